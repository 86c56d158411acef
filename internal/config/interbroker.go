package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// InterBroker is how a broker of a cluster reaches the others: the
// listener it dials on each (the inter-broker listener) and, when that
// listener is SASL_PLAINTEXT or SASL_SSL, its SASL credentials.
type InterBroker struct {
	Listener Listener
	// Mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), Username and
	// Password are set for a SASL listener.
	Mechanism, Username, Password string
	// IgnoredOptions are the options of the JAAS configuration Gregor
	// does not read (PlainLoginModule's user_<name> list of users),
	// so that the caller can say so.
	IgnoredOptions []string
}

// JAAS login modules, by SASL mechanism.
const (
	plainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule"
	scramLoginModule = "org.apache.kafka.common.security.scram.ScramLoginModule"
)

// InterBrokerListener returns the inter-broker listener:
// inter.broker.listener.name, or the listener named after
// security.inter.broker.protocol (Kafka's older form; setting both is
// an error, as in Kafka), or else the first client listener (PLAINTEXT
// without listeners). A controller listener cannot be it.
func (c *BrokerConfig) InterBrokerListener() (Listener, error) {
	ls, ok, err := c.Listeners()
	if err != nil {
		return Listener{}, err
	}
	if !ok {
		ls = []Listener{{Name: Plaintext, Protocol: Plaintext}}
	}
	name, proto := c.String("inter.broker.listener.name"), c.String("security.inter.broker.protocol")
	byName, byProto := name != "", proto != ""
	find := func(n string) (Listener, bool) {
		i := slices.IndexFunc(ls, func(l Listener) bool { return strings.EqualFold(l.Name, n) })
		if i < 0 {
			return Listener{}, false
		}
		return ls[i], true
	}
	switch {
	case byName && byProto:
		return Listener{}, fmt.Errorf("%w: inter.broker.listener.name and security.inter.broker.protocol are mutually exclusive: set only inter.broker.listener.name", ErrInvalid)
	case byName:
		if c.isControllerListener(name) {
			return Listener{}, fmt.Errorf("%w: inter.broker.listener.name=%s names a controller listener (controller.listener.names): brokers replicate over a client listener", ErrInvalid, name)
		}
		l, ok := find(name)
		if !ok {
			return Listener{}, fmt.Errorf("%w: inter.broker.listener.name=%s: listeners has no listener %s", ErrInvalid, name, strings.ToUpper(name))
		}
		return l, nil
	case byProto:
		l, ok := find(proto)
		if !ok {
			return Listener{}, fmt.Errorf("%w: security.inter.broker.protocol=%s: listeners has no listener named %s (or use inter.broker.listener.name)", ErrInvalid, proto, proto)
		}
		return l, nil
	}
	return ls[0], nil
}

// isControllerListener reports whether name is one of
// controller.listener.names.
func (c *BrokerConfig) isControllerListener(name string) bool {
	return slices.ContainsFunc(SplitList(c.String("controller.listener.names")), func(n string) bool { return strings.EqualFold(n, name) })
}

// InterBroker returns the inter-broker listener and, for a SASL one,
// the credentials of sasl.mechanism.inter.broker.protocol, from
// listener.name.<listener>.<mechanism>.sasl.jaas.config. The mechanism
// must be one the listener enables (sasl.enabled.mechanisms), as Kafka
// requires.
func (c *BrokerConfig) InterBroker() (InterBroker, error) {
	l, err := c.InterBrokerListener()
	if err != nil {
		return InterBroker{}, err
	}
	ib := InterBroker{Listener: l}
	if l.Protocol != SASLPlaintext && l.Protocol != SASLSSL {
		return ib, nil
	}
	mech := strings.ToUpper(c.String("sasl.mechanism.inter.broker.protocol"))
	enabled := SplitList(c.ListenerString(l.Name, "sasl.enabled.mechanisms"))
	if !slices.ContainsFunc(enabled, func(m string) bool { return strings.EqualFold(m, mech) }) {
		return InterBroker{}, fmt.Errorf("%w: sasl.mechanism.inter.broker.protocol=%s is not enabled on the inter-broker listener %s (sasl.enabled.mechanisms=%s)", ErrInvalid, mech, l.Name, strings.Join(enabled, ","))
	}
	key := "listener.name." + strings.ToLower(l.Name) + "." + strings.ToLower(mech) + ".sasl.jaas.config"
	jaas, ok := c.static[key]
	if !ok {
		return InterBroker{}, fmt.Errorf("%w: the inter-broker listener %s is %s: set the brokers' credentials in %s (e.g. %s required username=\"broker\" password=\"...\";)", ErrInvalid, l.Name, l.Protocol, key, loginModule(mech))
	}
	module, opts, err := ParseJAAS(jaas)
	if err != nil {
		return InterBroker{}, fmt.Errorf("%w: %s: %v", ErrInvalid, key, err)
	}
	if want := loginModule(mech); module != want {
		return InterBroker{}, fmt.Errorf("%w: %s: login module %s, want %s for %s", ErrInvalid, key, module, want, mech)
	}
	ib.Mechanism, ib.Username, ib.Password = mech, opts["username"], opts["password"]
	if ib.Username == "" || ib.Password == "" {
		return InterBroker{}, fmt.Errorf("%w: %s needs username and password", ErrInvalid, key)
	}
	for k := range opts {
		if k != "username" && k != "password" {
			ib.IgnoredOptions = append(ib.IgnoredOptions, k)
		}
	}
	slices.Sort(ib.IgnoredOptions)
	return ib, nil
}

func loginModule(mech string) string {
	if mech == "PLAIN" {
		return plainLoginModule
	}
	return scramLoginModule
}

// ControllerListener returns the listener of the controller quorum: the
// first of controller.listener.names (its address is this node's in
// controller.quorum.voters, left empty here), with its protocol from
// listener.security.protocol.map, PLAINTEXT when the map does not name
// it (as Kafka maps controller listeners missing from the default map).
// PLAINTEXT and SSL (mutual TLS) are supported; SASL is refused.
func (c *BrokerConfig) ControllerListener() (Listener, error) {
	names := SplitList(c.String("controller.listener.names"))
	if len(names) == 0 {
		return Listener{}, fmt.Errorf("%w: controller.listener.names is empty", ErrInvalid)
	}
	protos, err := c.protocolMap()
	if err != nil {
		return Listener{}, err
	}
	l := Listener{Name: strings.ToUpper(names[0]), Protocol: Plaintext}
	if p, ok := protos[l.Name]; ok {
		l.Protocol = p
	}
	if l.Protocol == SASLPlaintext || l.Protocol == SASLSSL {
		return Listener{}, fmt.Errorf("%w: the controller listener %s is %s (listener.security.protocol.map): SASL on the controller listener is not supported; map it to SSL (mutual TLS) or PLAINTEXT", ErrInvalid, l.Name, l.Protocol)
	}
	return l, nil
}

// validJAAS checks a sasl.jaas.config value.
func validJAAS(v string) error {
	_, _, err := ParseJAAS(v)
	return err
}

// ParseJAAS parses a sasl.jaas.config value, one JAAS login module
// entry: the module's class name, a control flag (required, requisite,
// sufficient or optional), options name=value (a value quoted with "
// may hold spaces, \" and \\), and a closing semicolon.
func ParseJAAS(v string) (module string, options map[string]string, err error) {
	toks, err := jaasTokens(v)
	if err != nil {
		return "", nil, err
	}
	if len(toks) < 3 || toks[len(toks)-1] != ";" {
		return "", nil, errors.New(`want "LoginModule flag name=value ...;"`)
	}
	module, flag := toks[0], toks[1]
	switch strings.ToLower(flag) {
	case "required", "requisite", "sufficient", "optional":
	default:
		return "", nil, fmt.Errorf("control flag %q: want required, requisite, sufficient or optional", flag)
	}
	options = map[string]string{}
	toks = toks[2 : len(toks)-1]
	for i := 0; i < len(toks); i += 3 {
		if i+2 >= len(toks) || toks[i+1] != "=" || toks[i] == "=" || toks[i] == ";" || toks[i+2] == "=" || toks[i+2] == ";" {
			return "", nil, errors.New(`options must be name=value; one login module only`)
		}
		options[strings.TrimPrefix(toks[i], "\x00")] = strings.TrimPrefix(toks[i+2], "\x00")
	}
	return module, options, nil
}

// jaasTokens splits a JAAS entry into words, "=", ";" and quoted
// strings (marked with a leading NUL so that a quoted "=" or ";" is a
// value).
func jaasTokens(v string) ([]string, error) {
	var toks []string
	for i := 0; i < len(v); {
		switch ch := v[i]; {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			i++
		case ch == '=' || ch == ';':
			toks = append(toks, string(ch))
			i++
		case ch == '"':
			var b strings.Builder
			b.WriteByte(0)
			i++
			for {
				if i >= len(v) {
					return nil, errors.New("unterminated quoted value")
				}
				if v[i] == '\\' && i+1 < len(v) {
					b.WriteByte(v[i+1])
					i += 2
					continue
				}
				if v[i] == '"' {
					i++
					break
				}
				b.WriteByte(v[i])
				i++
			}
			toks = append(toks, b.String())
		default:
			j := i
			for j < len(v) && !strings.ContainsRune(" \t\n\r=;\"", rune(v[j])) {
				j++
			}
			toks = append(toks, v[i:j])
			i = j
		}
	}
	return toks, nil
}
