package auth

import (
	"errors"
	"strings"
	"testing"
)

// The rules of Kafka's SslPrincipalMapperTest that it accepts, and
// those it refuses.
func TestPrincipalMappingRulesValid(t *testing.T) {
	for _, rules := range []string{
		"DEFAULT",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
		"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
		"RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
		"RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
		"RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
		"RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
		"",
		`RULE:^CN=(?P<user>[^,]+),.*$/${user}/`,
		`RULE:^CN=(?<user>[^,]+),.*$/${user}/`,
		`RULE:^CN=\u0041(.*)$/$1/`,
		`RULE:^CN=\Q(a)\E(.*)$/$1/`,
	} {
		if _, err := ParsePrincipalMappingRules(rules); err != nil {
			t.Errorf("%q: %v", rules, err)
		}
	}
}

func TestPrincipalMappingRulesInvalid(t *testing.T) {
	for _, rules := range []string{
		// Kafka's.
		"default",
		"DEFAUL",
		"DEFAULT/L",
		"DEFAULT/U",
		"RULE:CN=(.*?),OU=ServiceUsers.*/$1",
		"rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
		"DEFAULT,RULE:x/y/Z",
		// Java syntax Go's RE2 lacks or reads otherwise.
		`RULE:^CN=(\w+),OU=\1$/$1/`,
		`RULE:^CN=(?=admin)(.*)$/$1/`,
		`RULE:^CN=(?<!x)(.*)$/$1/`,
		`RULE:^CN=(.*+)$/$1/`,
		`RULE:^CN=(?>a|ab)(.*)$/$1/`,
		`RULE:^CN=([a-z&&[^x]]+)$/$1/`,
		`RULE:^CN=([a[b]]+)$/$1/`,
		`RULE:^CN=([[:alpha:]]+)$/$1/`,
		`RULE:(?U)^CN=(.*)$/$1/`,
		`RULE:^CN=\v(.*)$/$1/`,
		`RULE:^CN=\012(.*)$/$1/`,
		`RULE:^CN=\u00(.*)$/$1/`,
		`RULE:^CN=(.*$/$1/`,
		`RULE:^CN=\Z(.*)$/$1/`,
		// Replacements Java refuses.
		`RULE:^CN=(.*)$/$/`,
		`RULE:^CN=(.*)$/$x/`,
		`RULE:^CN=.*$/$1/`,
		`RULE:^CN=(.*)$/${nope}/`,
		`RULE:^CN=(.*)$/${user/`,
	} {
		if m, err := ParsePrincipalMappingRules(rules); err == nil {
			t.Errorf("%q: accepted as %s", rules, m)
		}
	}
}

// Kafka's SslPrincipalMapperTest.testSslPrincipalMapper.
func TestPrincipalMapperKafkaExamples(t *testing.T) {
	m, err := ParsePrincipalMappingRules(strings.Join([]string{
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
		"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
		"RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
		"RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
		"DEFAULT",
	}, ", "))
	if err != nil {
		t.Fatal(err)
	}
	for dn, want := range map[string]string{
		"CN=Duke,OU=ServiceUsers,O=Org,C=US":        "duke",
		"CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US": "duke@sme",
		"cn=duke,ou=sme,dc=mycp,dc=com":             "DUKE@SME",
		"cN=duke,OU=JavaSoft,O=Sun Microsystems":    "DUKE",
		"OU=JavaSoft,O=Sun Microsystems,C=US":       "OU=JavaSoft,O=Sun Microsystems,C=US",
	} {
		if got, err := m.Name(dn); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", dn, got, err, want)
		}
	}
}

func TestPrincipalMapperNames(t *testing.T) {
	for _, c := range []struct{ rules, dn, want string }{
		// The example of docs/SECURITY.md.
		{"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT", "CN=Alice,OU=ServiceUsers,O=Acme", "alice"},
		{"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT", "CN=Bob,O=Acme", "CN=Bob,O=Acme"},
		{"DEFAULT", "CN=a\\,b,O=x", "CN=a\\,b,O=x"},
		// Kafka's testCommaWithWhitespace: an escaped comma in the CN.
		{`RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT`, `CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz`, `Tkac\, Adam`},
		// The whole subject must match: a prefix does not.
		{"RULE:CN=([a-z]+)/$1/,DEFAULT", "CN=abc,O=x", "CN=abc,O=x"},
		{"RULE:CN=([a-z]+),.*/$1/", "CN=abc,O=x", "abc"},
		// Every match is replaced, as Java's replaceAll.
		{"RULE:(.*?)x/[$1]/", "axbx", "[a][b]"},
		// A group past the last is literal text; $12 is group 1 then
		// 2 with fewer than 12 groups; \$ is a dollar.
		{"RULE:^CN=(.*)$/$1$4/", "CN=a", "a$4"},
		{"RULE:^CN=(.*)$/$12/", "CN=a", "a2"},
		{`RULE:^CN=(.*)$/\$$1\/x/U`, "CN=a", "$A/X"},
		{"RULE:^CN=(.*)$/$0/", "CN=a", "CN=a"},
		// An optional group that did not take part is empty.
		{"RULE:^CN=(a)?(.*)$/[$1]$2/", "CN=b", "[]b"},
		// Named groups, Java's \u escape, spaces kept.
		{`RULE:^CN=(?<u>[^,]+).*$/${u}/`, "CN=x,O=y", "x"},
		{`RULE:^CN=\u0041(.*)$/$1/`, "CN=Ab", "b"},
		{"  RULE:^CN=(.*)$/ $1 / , DEFAULT", "CN=a", " a "},
		{`RULE:^O=a\/b,CN=(.*)$/$1/`, "O=a/b,CN=c", "c"},
	} {
		m, err := ParsePrincipalMappingRules(c.rules)
		if err != nil {
			t.Errorf("%q: %v", c.rules, err)
			continue
		}
		if got, err := m.Name(c.dn); err != nil || got != c.want {
			t.Errorf("%q on %q: %q, %v; want %q", c.rules, c.dn, got, err, c.want)
		}
	}
}

func TestPrincipalMapperNoMatchingRule(t *testing.T) {
	for _, rules := range []string{"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L", "", " , ,"} {
		m, err := ParsePrincipalMappingRules(rules)
		if err != nil {
			t.Fatal(err)
		}
		if name, err := m.Name("CN=Bob,O=Acme"); !errors.Is(err, ErrNoMatchingRule) {
			t.Errorf("%q: %q, %v; want ErrNoMatchingRule", rules, name, err)
		}
	}
	var nilMapper *PrincipalMapper
	if name, err := nilMapper.Name("CN=x"); err != nil || name != "CN=x" {
		t.Errorf("nil mapper: %q, %v", name, err)
	}
}

// Kafka's testRulesSplitting, through String (which writes a rule
// without flag with its closing slash, where Kafka's toString does not).
func TestPrincipalMappingRulesSplitting(t *testing.T) {
	for _, c := range []struct{ rules, want string }{
		{"", ""},
		{"DEFAULT", "DEFAULT"},
		{"RULE://", "RULE://"},
		{"RULE:/.*/", "RULE:/.*/"},
		{"RULE:/.*/L", "RULE:/.*/L"},
		{"RULE://,DEFAULT", "RULE://,DEFAULT"},
		{"  RULE:// ,  DEFAULT  ", "RULE://,DEFAULT"},
		{"  RULE:   /     / ,  DEFAULT  ", "RULE:   /     /,DEFAULT"},
		{"  RULE:  /     /U   ,DEFAULT  ", "RULE:  /     /U,DEFAULT"},
		{"  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  ", "RULE:([A-Z]*)/$1/U,RULE:([a-z]+)/$1/,DEFAULT"},
		{",   , , ,      , , ,   ", ""},
		{",,RULE://,,,DEFAULT,,", "RULE://,DEFAULT"},
		{",  , RULE: /   /    ,,,   DEFAULT, ,   ", "RULE: /   /,DEFAULT"},
		{"     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,", "RULE:   /  /U,DEFAULT"},
		{`RULE:\/\\\(\)\n\t/\/\//`, `RULE:\/\\\(\)\n\t/\/\//`},
		{`RULE:\**\/+/*/L,RULE:\/*\**/**/`, `RULE:\**\/+/*/L,RULE:\/*\**/**/`},
		{`RULE:,RULE:,/,RULE:,\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT`,
			`RULE:,RULE:,/,RULE:,\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT`},
	} {
		m, err := ParsePrincipalMappingRules(c.rules)
		if err != nil {
			t.Errorf("%q: %v", c.rules, err)
			continue
		}
		if got := m.String(); got != c.want {
			t.Errorf("%q: %q, want %q", c.rules, got, c.want)
		}
		// String's output parses to the same rules.
		if again, err := ParsePrincipalMappingRules(m.String()); err != nil || again.String() != m.String() {
			t.Errorf("%q: String %q reparsed: %v, %v", c.rules, m, again, err)
		}
	}
}

// FuzzPrincipalMappingRules: whatever the value, parsing never panics,
// and a mapper that parsed never panics on a subject; String reparses
// to itself.
func FuzzPrincipalMappingRules(f *testing.F) {
	for _, s := range []string{
		"DEFAULT",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
		`RULE:,RULE:,/,RULE:,\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT`,
		`RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT`,
		`RULE:^CN=(?<u>[^,]+).*$/${u}$9\$/U`,
		`RULE:\u00e9[\]a-z&]\Q(\E/$0/`,
		"RULE:(.*?)x/[$1]/",
		",,\\",
		"RULE:\\",
		"RULE:a/\\",
	} {
		f.Add(s, "CN=Duke,OU=ServiceUsers,O=Org,C=US")
	}
	f.Fuzz(func(t *testing.T, rules, dn string) {
		m, err := ParsePrincipalMappingRules(rules)
		if err != nil {
			if m != nil {
				t.Fatalf("%q: a mapper and an error", rules)
			}
			return
		}
		_, _ = m.Name(dn)
		again, err := ParsePrincipalMappingRules(m.String())
		if err != nil || again.String() != m.String() {
			t.Fatalf("%q: String %q reparsed: %v, %v", rules, m, again, err)
		}
	})
}
