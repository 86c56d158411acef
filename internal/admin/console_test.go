package admin_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gregor-streaming/gregor/internal/admin"
)

// TestConsoleMount: with Options.Console the index lists /console/ with
// its warning, /console/ answers 503 until SetConsole hands it over, and
// then every path under it goes to the console; without it, nothing.
func TestConsoleMount(t *testing.T) {
	adm := admin.New(admin.Options{Console: true})
	hs := httptest.NewServer(adm.Handler())
	t.Cleanup(hs.Close)

	code, body := get(t, hs.URL+"/")
	if code != 200 || !strings.Contains(body, "/console/") || !strings.Contains(body, "trusted interface") || !strings.Contains(body, "admin.console.enable=false") {
		t.Errorf("index: %d\n%s", code, body)
	}
	if code, body := get(t, hs.URL+"/console/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Errorf("/console/ before SetConsole: %d %q, want 503", code, body)
	}
	adm.SetConsole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "console %s %s", r.Method, r.URL.RequestURI())
	}))
	for path, want := range map[string]string{
		"/console/":                       "console GET /console/",
		"/console/topics?filter=a":        "console GET /console/topics?filter=a",
		"/console/group?id=%3Cx%3E":       "console GET /console/group?id=%3Cx%3E",
		"/console/static/console.css":     "console GET /console/static/console.css",
		"/console/topics/orders?format=j": "console GET /console/topics/orders?format=j",
	} {
		if code, body := get(t, hs.URL+path); code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
	}

	plain := admin.New(admin.Options{})
	hp := httptest.NewServer(plain.Handler())
	t.Cleanup(hp.Close)
	if _, body := get(t, hp.URL+"/"); strings.Contains(body, "/console/") {
		t.Errorf("index lists the console without Options.Console:\n%s", body)
	}
	if code, _ := get(t, hp.URL+"/console/"); code != http.StatusNotFound {
		t.Errorf("/console/ without Options.Console: %d, want 404", code)
	}
}
