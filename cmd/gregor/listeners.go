package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gregor-streaming/gregor/internal/config"
)

// resolveListeners returns the client listeners gregor serve opens and
// their advertised addresses by name: listeners and
// advertised.listeners from the properties, --listen and --advertise
// (when given explicitly) for the first one, and a PLAINTEXT listener on
// --listen without listeners. advertised.listeners and
// listener.name.NAME.* must name listeners that exist: a misspelt name
// would leave its listener with other settings, failing open.
func resolveListeners(cfg *config.BrokerConfig, listen, advertise string, explicit map[string]bool) ([]config.Listener, map[string]string, error) {
	listeners, ok, err := cfg.Listeners()
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		listeners = []config.Listener{{Name: config.Plaintext, Protocol: config.Plaintext, Addr: listen}}
	} else if explicit["listen"] {
		listeners[0].Addr = listen
	}
	advertised, err := cfg.AdvertisedListeners()
	if err != nil {
		return nil, nil, err
	}
	if advertised == nil {
		advertised = map[string]string{}
	}
	if explicit["advertise"] {
		advertised[listeners[0].Name] = advertise
	}
	has := func(name string) bool {
		return slices.ContainsFunc(listeners, func(l config.Listener) bool { return strings.EqualFold(l.Name, name) })
	}
	for name := range advertised {
		if !has(name) {
			return nil, nil, fmt.Errorf("advertised.listeners names %s, which listeners does not have", name)
		}
	}
	controller := func(name string) bool {
		return slices.ContainsFunc(config.SplitList(cfg.String("controller.listener.names")), func(n string) bool { return strings.EqualFold(n, name) })
	}
	for _, name := range cfg.ListenerOverrideNames() {
		if !has(name) && !controller(name) {
			return nil, nil, fmt.Errorf("listener.name.%s.* is set, but listeners has no listener %s", name, strings.ToUpper(name))
		}
	}
	return listeners, advertised, nil
}
