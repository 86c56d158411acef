package auth

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Kafka's ssl.principal.mapping.rules (KIP-371): how the subject of a
// TLS client certificate, in RFC 2253 form, becomes the name of the
// client's User principal.
//
// The value is a comma-separated list of rules, tried in order; the
// first that matches gives the name:
//
//   - DEFAULT: the whole subject, as without rules;
//   - RULE:pattern/replacement/ and RULE:pattern/replacement/L or /U: when
//     the regular expression pattern matches the whole subject, the
//     subject with every match of pattern replaced by replacement ($1, $2
//     … or ${name} are the pattern's groups), lower-cased with /L,
//     upper-cased with /U.
//
// A backslash escapes the next character in a pattern or a replacement,
// so \/ is a slash that does not end one; a pattern may hold commas, as
// the list is split after each rule's closing slash and flag. Empty
// items are ignored; spaces around the items are not part of them. A
// subject that no rule matches has no principal: the connection's
// authentication fails (Kafka's NoMatchingRule).
//
// Kafka compiles the patterns as Java regular expressions; Gregor has
// Go's (RE2), which share most of the syntax. What RE2 lacks (back
// references, lookaround, possessive quantifiers, atomic groups, nested
// character classes and their && intersection) is an error when the
// rules are parsed, as is the syntax that RE2 reads differently from
// Java ((?U) is ungreedy to Go, Unicode classes to Java; \v; \0 and
// \1-\9, octal escapes or back references). Java's \uXXXX is read as
// the character it names. A replacement that Java would refuse (a $
// not followed by a group, a trailing backslash, a group reference in a
// rule whose pattern has no groups) is an error too, when Kafka would
// fail every matching connection; a reference to a group past the last,
// in a pattern that has groups, is literal text, as Kafka makes it.

// DefaultPrincipalMappingRules is the default of
// ssl.principal.mapping.rules: the whole subject.
const DefaultPrincipalMappingRules = "DEFAULT"

// ErrNoMatchingRule is returned by PrincipalMapper.Name when no rule
// matches a subject.
var ErrNoMatchingRule = errors.New("no ssl.principal.mapping.rules rule matches")

// PrincipalMapper maps certificate subjects to principal names by
// ssl.principal.mapping.rules. A nil *PrincipalMapper maps every subject
// to itself (DEFAULT). It is safe for concurrent use.
type PrincipalMapper struct {
	rules []mappingRule
}

// mappingRule is one rule: DEFAULT when re is nil.
type mappingRule struct {
	// pattern and replacement are the rule's text, escapes kept.
	pattern, replacement string
	lower, upper         bool

	re    *regexp.Regexp // the pattern, to replace its matches
	whole *regexp.Regexp // the pattern anchored at both ends
	repl  []replPart
}

// replPart is a piece of a replacement: literal text, or group's match
// when group >= 0.
type replPart struct {
	text  string
	group int
}

// ParsePrincipalMappingRules parses an ssl.principal.mapping.rules value.
// An error says which rule is bad and why; it never panics, whatever s.
func ParsePrincipalMappingRules(s string) (*PrincipalMapper, error) {
	items, err := splitMappingRules(s)
	if err != nil {
		return nil, err
	}
	m := &PrincipalMapper{}
	for _, it := range items {
		if it.isDefault {
			m.rules = append(m.rules, mappingRule{})
			continue
		}
		r, err := compileMappingRule(it)
		if err != nil {
			return nil, fmt.Errorf("rule `%s`: %w", it.text, err)
		}
		m.rules = append(m.rules, r)
	}
	return m, nil
}

// Name returns the principal name of the certificate subject dn: what
// the first rule that matches makes of it. No rule matching is
// ErrNoMatchingRule.
func (m *PrincipalMapper) Name(dn string) (string, error) {
	if m == nil {
		return dn, nil
	}
	for _, r := range m.rules {
		if name, ok := r.apply(dn); ok {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w %q (rules: %s)", ErrNoMatchingRule, dn, m)
}

// String returns the rules, each as DEFAULT or RULE:pattern/replacement/
// with its flag, separated by commas: a value that parses to the same
// rules.
func (m *PrincipalMapper) String() string {
	if m == nil {
		return DefaultPrincipalMappingRules
	}
	var b strings.Builder
	for i, r := range m.rules {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(r.String())
	}
	return b.String()
}

func (r mappingRule) String() string {
	if r.re == nil {
		return "DEFAULT"
	}
	s := "RULE:" + r.pattern + "/" + r.replacement + "/"
	switch {
	case r.lower:
		s += "L"
	case r.upper:
		s += "U"
	}
	return s
}

// apply maps dn by the rule; false when the rule does not match it.
func (r mappingRule) apply(dn string) (string, bool) {
	if r.re == nil {
		return dn, true
	}
	if !r.whole.MatchString(dn) {
		return "", false
	}
	// As Java's String.replaceAll: every match, not only the first,
	// which for a pattern with lazy quantifiers may be shorter than the
	// whole subject. (Go skips an empty match right after another one,
	// Java does not: a pattern such as .* that also matches the empty
	// string at the end gives the replacement once here, twice in
	// Kafka.)
	var b strings.Builder
	last := 0
	for _, loc := range r.re.FindAllStringSubmatchIndex(dn, -1) {
		b.WriteString(dn[last:loc[0]])
		for _, p := range r.repl {
			if p.group < 0 {
				b.WriteString(p.text)
			} else if lo, hi := loc[2*p.group], loc[2*p.group+1]; lo >= 0 {
				b.WriteString(dn[lo:hi])
			}
		}
		last = loc[1]
	}
	b.WriteString(dn[last:])
	name := b.String()
	switch {
	case r.lower:
		name = strings.ToLower(name)
	case r.upper:
		name = strings.ToUpper(name)
	}
	return name, true
}

// ruleItem is one item of the list, split but not compiled.
type ruleItem struct {
	text                 string // as written, for errors
	isDefault            bool
	pattern, replacement string
	flag                 byte // 0, 'L' or 'U'
	// trailing: text after the flag, before the next comma (an error).
	trailing string
}

// splitMappingRules splits the value into its rules as Kafka's parser
// does. At each item, after spaces: DEFAULT when followed by a comma or
// the end; RULE: when a pattern and a replacement, each closed by an
// unescaped slash, follow, then an optional L or U, and nothing but
// spaces up to the next comma or the end (the pattern may hold commas);
// anything else, up to the next comma, is an error unless it is empty.
func splitMappingRules(s string) ([]ruleItem, error) {
	s = strings.TrimSpace(s)
	var out []ruleItem
	i := 0
	for i < len(s) {
		i = skipSpaces(s, i)
		start := i
		if rest, ok := strings.CutPrefix(s[i:], "DEFAULT"); ok {
			if j := skipSpaces(s, len(s)-len(rest)); j == len(s) || s[j] == ',' {
				out = append(out, ruleItem{text: "DEFAULT", isDefault: true})
				i = next(s, j)
				continue
			}
		}
		if strings.HasPrefix(s[i:], "RULE:") {
			if it, end, ok := splitRule(s, i); ok {
				out = append(out, it)
				i = end
				continue
			}
		}
		// Not a rule: up to the next comma, an error unless empty.
		end := strings.IndexByte(s[i:], ',')
		if end < 0 {
			end = len(s)
		} else {
			end += i
		}
		if text := strings.TrimSpace(s[start:end]); text != "" {
			return nil, fmt.Errorf("invalid rule `%s`: want DEFAULT or RULE:pattern/replacement/ with an optional L or U after the last slash", text)
		}
		i = next(s, end)
	}
	return out, nil
}

// splitRule reads RULE:pattern/replacement/[LU] at s[i:]: the item and
// where the next item starts; false when there is no closing slash.
// What follows the flag up to the next comma must be spaces.
func splitRule(s string, i int) (ruleItem, int, bool) {
	j := i + len("RULE:")
	pattern, j, ok := untilSlash(s, j)
	if !ok {
		return ruleItem{}, 0, false
	}
	replacement, j, ok := untilSlash(s, j)
	if !ok {
		return ruleItem{}, 0, false
	}
	it := ruleItem{pattern: pattern, replacement: replacement}
	if j < len(s) && (s[j] == 'L' || s[j] == 'U') {
		it.flag = s[j]
		j++
	}
	end := strings.IndexByte(s[j:], ',')
	if end < 0 {
		end = len(s)
	} else {
		end += j
	}
	it.text = strings.TrimRight(s[i:end], " \t\r\n\f\v")
	// Kafka's "unmatched substring": /L/U, /LU, /x …
	it.trailing = strings.TrimSpace(s[j:end])
	return it, next(s, end), true
}

// untilSlash reads s from i up to an unescaped slash: the text without
// it, escapes kept, and the index after the slash.
func untilSlash(s string, i int) (string, int, bool) {
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if j+1 >= len(s) || s[j+1] == '\n' || s[j+1] == '\r' {
				return "", 0, false
			}
			j++ // the escaped byte; a multi-byte character's tail bytes are never \ or /
		case '/':
			return s[i:j], j + 1, true
		}
	}
	return "", 0, false
}

func skipSpaces(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// next returns where the item after the one ending at i (spaces, then a
// comma or the end) starts.
func next(s string, i int) int {
	i = skipSpaces(s, i)
	if i < len(s) && s[i] == ',' {
		i++
	}
	return i
}

// compileMappingRule compiles a RULE item's pattern and replacement.
func compileMappingRule(it ruleItem) (mappingRule, error) {
	if it.trailing != "" {
		return mappingRule{}, fmt.Errorf("unexpected `%s` after the replacement's closing slash (want nothing, L or U)", it.trailing)
	}
	expr, err := javaRegexpToRE2(it.pattern)
	if err != nil {
		return mappingRule{}, fmt.Errorf("pattern `%s`: %w", it.pattern, err)
	}
	r := mappingRule{pattern: it.pattern, replacement: it.replacement, lower: it.flag == 'L', upper: it.flag == 'U'}
	if r.re, err = regexp.Compile(expr); err != nil {
		return mappingRule{}, fmt.Errorf("pattern `%s`: %w", it.pattern, err)
	}
	if r.whole, err = regexp.Compile(`\A(?:` + expr + `)\z`); err != nil {
		return mappingRule{}, fmt.Errorf("pattern `%s`: %w", it.pattern, err)
	}
	if r.repl, err = parseReplacement(it.replacement, r.re); err != nil {
		return mappingRule{}, fmt.Errorf("replacement `%s`: %w", it.replacement, err)
	}
	return r, nil
}

// javaRegexpToRE2 translates a Java regular expression to Go's syntax,
// refusing what Go would not read as Java does (Go's own parser refuses
// what it lacks: lookaround, possessive quantifiers, \Z …).
func javaRegexpToRE2(p string) (string, error) {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 >= len(p) {
				return "", errors.New("a trailing \\ escapes nothing")
			}
			e := p[i+1]
			switch {
			case e >= '0' && e <= '9':
				return "", fmt.Errorf(`\%c: back references and octal escapes are not supported (Go's RE2 syntax)`, e)
			case e == 'v':
				return "", errors.New(`\v is a vertical tab to Go, vertical whitespace to Java: write the characters meant`)
			case e == 'u':
				if i+6 > len(p) || !isHex(p[i+2:i+6]) {
					return "", errors.New(`\u needs four hexadecimal digits`)
				}
				b.WriteString(`\x{` + p[i+2:i+6] + `}`)
				i += 5
				continue
			case e == 'Q' && !inClass:
				// Literal up to \E, as in both syntaxes.
				end := strings.Index(p[i+2:], `\E`)
				if end < 0 {
					b.WriteString(p[i:])
					return b.String(), nil
				}
				b.WriteString(p[i : i+2+end+2])
				i += 2 + end + 1
				continue
			}
			b.WriteString(p[i : i+2])
			i++
		case inClass && c == '[':
			return "", errors.New("nested character classes ([a[b]], [[:alpha:]]) are not supported: Java reads them as unions, Go otherwise")
		case inClass && c == '&' && i+1 < len(p) && p[i+1] == '&':
			return "", errors.New("character class intersection (&&) is not supported")
		case inClass && c == ']':
			inClass = false
			b.WriteByte(c)
		case !inClass && c == '[':
			inClass = true
			b.WriteByte(c)
			// A ] first in the class (after ^) is literal in Go.
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
		case !inClass && c == '(' && strings.HasPrefix(p[i+1:], "?"):
			// Inline flags: Go reads U as ungreedy, Java as Unicode
			// character classes.
			j := i + 2
			for j < len(p) && strings.IndexByte("imsuxdU-", p[j]) >= 0 {
				if p[j] == 'U' {
					return "", errors.New("the flag U is Unicode character classes to Java, ungreedy to Go: not supported")
				}
				j++
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	if !utf8.ValidString(b.String()) {
		return "", errors.New("not valid UTF-8")
	}
	return b.String(), nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// parseReplacement parses a replacement as Java's Matcher does: \c is
// the character c, $N a group (the longest run of digits naming one,
// as Java reads $12 as group 12 only when there are 12 groups), ${name}
// a named group. A $N past the last group is literal text when the
// pattern has groups (Kafka escapes it), an error when it has none
// (Kafka would fail every matching connection).
func parseReplacement(s string, re *regexp.Regexp) ([]replPart, error) {
	var parts []replPart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, replPart{text: lit.String(), group: -1})
			lit.Reset()
		}
	}
	groups := re.NumSubexp()
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) {
				return nil, errors.New("a trailing \\ escapes nothing")
			}
			i++
			lit.WriteByte(s[i])
		case '$':
			if i+1 >= len(s) {
				return nil, errors.New("a trailing $ names no group")
			}
			if s[i+1] == '{' {
				end := strings.IndexByte(s[i+2:], '}')
				if end < 0 {
					return nil, errors.New("${ without a closing }")
				}
				name := s[i+2 : i+2+end]
				g := -1
				if name != "" {
					g = re.SubexpIndex(name)
				}
				if g < 0 {
					return nil, fmt.Errorf("no group named %q", name)
				}
				flush()
				parts = append(parts, replPart{group: g})
				i += 2 + end
				continue
			}
			d := s[i+1]
			if d < '0' || d > '9' {
				return nil, errors.New("a $ must be followed by a group number or {name} (write \\$ for a dollar sign)")
			}
			n := int(d - '0')
			if n > groups {
				if groups == 0 {
					return nil, fmt.Errorf("$%c: the pattern has no groups", d)
				}
				lit.WriteByte('$') // the digits follow as literal text
				continue
			}
			j := i + 2
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				m := n*10 + int(s[j]-'0')
				if m > groups {
					break
				}
				n = m
				j++
			}
			flush()
			parts = append(parts, replPart{group: n})
			i = j - 1
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return parts, nil
}
