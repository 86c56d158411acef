package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Path is where the console is served: every page is under it.
const Path = "/console/"

//go:embed templates static
var assets embed.FS

// Options configure a Console.
type Options struct {
	// Dial opens a connection to the broker; required. gregor serve
	// gives server.DialInternal: a connection in memory, served as
	// server.InternalPrincipal whatever the listeners' security.
	Dial func(ctx context.Context) (net.Conn, error)
	// Metrics, when set, is the registry the overview reads the produce
	// and fetch byte counters from.
	Metrics prometheus.Gatherer
	// Version is the broker's version, shown on the overview.
	Version string
	// Started is when the broker started; zero = when New ran.
	Started time.Time
	// Listeners are the broker's configured listeners, shown on the
	// overview (the metadata only tells the advertised endpoint).
	Listeners []Listener
	// Timeout bounds the broker requests of one page; 0 = 10 s.
	Timeout time.Duration
	// Logger; nil = slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// AllowedHosts are the host names (without port) pages may be
	// asked for by, besides IP literals and localhost
	// (admin.console.allowed.hosts).
	AllowedHosts []string
}

// Console serves the web console's pages. It holds one Kafka client,
// connected on demand; Close closes it.
type Console struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	cl      *kgo.Client
	adm     *kadm.Client
	mux     *http.ServeMux
	traffic *traffic // nil without Options.Metrics
	// pages holds each page's template set (layout + page). Immutable.
	pages map[string]*template.Template
}

// New returns a console reading the cluster through opts.Dial. Nothing
// is dialled until the first page is asked for.
func New(opts Options) (*Console, error) {
	if opts.Dial == nil {
		return nil, errors.New("console: Options.Dial is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Started.IsZero() {
		opts.Started = opts.Now()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	dial := opts.Dial
	cl, err := kgo.NewClient(
		// The address is never resolved: every connection, to the seed
		// or to the broker the metadata names, is one from Dial.
		kgo.SeedBrokers("console.internal:9092"),
		kgo.Dialer(func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) }),
		kgo.ClientID("gregor-console"),
		kgo.MetadataMinAge(time.Second),
	)
	if err != nil {
		return nil, err
	}
	c := &Console{
		opts:  opts,
		log:   opts.Logger,
		now:   opts.Now,
		cl:    cl,
		adm:   kadm.NewClient(cl),
		mux:   http.NewServeMux(),
		pages: pages,
	}
	if opts.Metrics != nil {
		c.traffic = newTraffic(opts.Metrics, opts.Now)
	}
	c.routes()
	return c, nil
}

// Close closes the console's Kafka client; pages asked for afterwards
// fail. Idempotent.
func (c *Console) Close() { c.cl.Close() }

// ServeHTTP serves the pages under Path. Only GET and HEAD: the console
// changes nothing. A request must name the console by an IP address,
// localhost or one of Options.AllowedHosts, and must not come from
// another site's page: otherwise a web page could point its own domain
// name at 127.0.0.1 (DNS rebinding) and read the console as same-origin.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !c.hostAllowed(r.Host) {
		http.Error(w, "this host name is not allowed for the console (admin.console.allowed.hosts)", http.StatusMisdirectedRequest)
		return
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" {
		http.Error(w, "cross-site requests are not served", http.StatusForbidden)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// hostAllowed reports whether a request's Host names the console by an
// IP literal, localhost (or a name under .localhost) or an allowed name.
func (c *Console) hostAllowed(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, a := range c.opts.AllowedHosts {
		if strings.EqualFold(strings.TrimSuffix(a, "."), host) {
			return true
		}
	}
	return false
}

func (c *Console) routes() {
	c.mux.HandleFunc("GET "+Path+"{$}", c.page("overview", "Overview", func(ctx context.Context, _ *http.Request) (any, error) {
		return c.overview(ctx)
	}))
	c.mux.HandleFunc("GET "+Path+"topics", c.page("topics", "Topics", func(ctx context.Context, r *http.Request) (any, error) {
		return c.topics(ctx, r.URL.Query().Get("filter"))
	}))
	c.mux.HandleFunc("GET "+Path+"topics/{topic}", c.page("topic", "Topic", func(ctx context.Context, r *http.Request) (any, error) {
		return c.topic(ctx, r.PathValue("topic"))
	}))
	c.mux.HandleFunc("GET "+Path+"groups", c.page("groups", "Consumer groups", func(ctx context.Context, r *http.Request) (any, error) {
		return c.groups(ctx, r.URL.Query().Get("filter"))
	}))
	// A group's ID is free-form ("", "..", "a/b" are all IDs), so it
	// travels in the query, where any string survives, rather than in
	// the path, which the mux cleans.
	c.mux.HandleFunc("GET "+Path+"group", func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.Query().Has("id") {
			http.Redirect(w, r, Path+"groups", http.StatusSeeOther)
			return
		}
		c.page("group", "Consumer group", func(ctx context.Context, r *http.Request) (any, error) {
			return c.group(ctx, r.URL.Query().Get("id"))
		})(w, r)
	})
	c.mux.HandleFunc("GET "+Path+"security", c.page("security", "Security", func(ctx context.Context, _ *http.Request) (any, error) {
		return c.security(ctx)
	}))
	c.mux.HandleFunc("GET "+Path+"static/console.css", func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w)
		w.Header().Set("Cache-Control", "max-age=300")
		http.ServeFileFS(w, r, assets, "static/console.css")
	})
	c.mux.HandleFunc("GET "+Path, func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, "error", "Not found", nil, &errNotFound{"page " + r.URL.Path})
	})
}

// page returns the handler of a page whose data load reads.
func (c *Console) page(name, title string, load func(context.Context, *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), c.opts.Timeout)
		defer cancel()
		data, err := load(ctx, r)
		if err == nil {
			switch d := data.(type) {
			case *Topic:
				title = "Topic " + d.Name
			case *Group:
				title = "Group " + d.Group
			}
		}
		c.render(w, r, name, title, data, err)
	}
}

// view is what the layout renders around a page's content.
type view struct {
	Title string
	// Nav is the navigation entry to mark as current.
	Nav string
	// Self and JSONURL are this page's address, as HTML and as JSON.
	Self, JSONURL string
	Now           time.Time
	Data          any
	// Err is why the page has no data.
	Err string
}

var navOf = map[string]string{
	"overview": "overview", "topics": "topics", "topic": "topics",
	"groups": "groups", "group": "groups", "security": "security",
}

// render writes data as JSON (?format=json) or as the named page's
// HTML; err, when not nil, as an error page or {"error": …}.
func (c *Console) render(w http.ResponseWriter, r *http.Request, name, title string, data any, err error) {
	setHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	status := http.StatusOK
	var nf *errNotFound
	switch {
	case err == nil:
	case errors.As(err, &nf):
		status = http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	default:
		// The broker could not be read: the console is a gateway.
		status = http.StatusBadGateway
	}
	if err != nil && status != http.StatusNotFound {
		c.log.Warn("console: cannot read the cluster", "path", r.URL.Path, "err", err)
	}
	if r.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		var body any = data
		if err != nil {
			body = map[string]string{"error": err.Error()}
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(body); eerr != nil {
			c.log.Error("console: encoding JSON", "path", r.URL.Path, "err", eerr)
			http.Error(w, `{"error": "cannot encode the page"}`, http.StatusInternalServerError)
			return
		}
		w.WriteHeader(status)
		w.Write(buf.Bytes())
		return
	}
	v := view{Title: title, Nav: navOf[name], Self: r.URL.Path, JSONURL: jsonURL(r.URL), Now: c.now(), Data: data}
	if r.URL.RawQuery != "" {
		v.Self += "?" + r.URL.RawQuery
	}
	if err != nil {
		v.Err, v.Data = err.Error(), nil
		name = "error"
	}
	var buf bytes.Buffer
	if terr := c.pages[name].ExecuteTemplate(&buf, "layout", v); terr != nil {
		c.log.Error("console: rendering", "page", name, "err", terr)
		http.Error(w, "cannot render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// jsonURL is u with format=json added to its query.
func jsonURL(u *url.URL) string {
	q := u.Query()
	q.Set("format", "json")
	return u.Path + "?" + q.Encode()
}

// setHeaders sets the headers of every response: no script, style and
// images from the console itself only, no framing, no sniffing, no
// referrer leaving with the cluster's names in it.
func setHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}
