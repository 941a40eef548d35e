package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/testlog"
)

// syncBuffer is safe for a writer goroutine and a polling reader.
type syncBuffer = testlog.Buffer

func TestHelpListsCommands(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, &out, io.Discard); code != 0 {
		t.Fatalf("--help exit code = %d, want 0", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out.String(), c.name) {
			t.Errorf("--help does not list %q:\n%s", c.name, out.String())
		}
	}
	if !strings.Contains(out.String(), "podio-sim") {
		t.Errorf("--help does not list podio-sim")
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"frobnicate"}, 2},
		{"unknown flag", []string{"podio-sim", "--nope"}, 2},
		{"unknown dataset", []string{"podio-sim", "--dataset", "huge"}, 2},
		{"bad fault json", []string{"podio-sim", "--fault", "{"}, 2},
		{"fault on unknown route", []string{"podio-sim", "--fault", `{"route":"GET /nope/","status":503}`}, 2},
		{"command help", []string{"podio-sim", "--help"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			if code := run(t.Context(), tc.args, io.Discard, &stderr); code != tc.want {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", code, tc.want, stderr.String())
			}
		})
	}
}

// TestPodioSimServes starts "dirgate podio-sim" on a free port and signs in with the demo
// credentials the README documents.
func TestPodioSimServes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	var stdout syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"podio-sim", "--addr", "127.0.0.1:0", "--fault", `{"route":"GET /org/","status":503,"times":1}`}, &stdout, io.Discard)
	}()
	var base string
	re := regexp.MustCompile(`listening on (http://\S+)`)
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("podio-sim did not report its address; stdout:\n%s", stdout.String())
	}

	resp, err := http.PostForm(base+"/oauth/token", url.Values{
		"grant_type": {"password"}, "client_id": {"demo-client"}, "client_secret": {"demo-secret"},
		"username": {"admin@demo.example"}, "password": {"demo"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("password grant: status %d, err %v", resp.StatusCode, err)
	}
	get := func(path string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "OAuth2 "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The start-up fault answers the first GET /org/ with 503, then lets calls through.
	if got := get("/org/"); got != 503 {
		t.Errorf("first GET /org/ = %d, want 503 from the --fault flag", got)
	}
	if got := get("/org/"); got != 200 {
		t.Errorf("second GET /org/ = %d, want 200", got)
	}
	if got := get("/user/"); got != 200 {
		t.Errorf("GET /user/ = %d, want 200", got)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code after cancel = %d, want 0", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("podio-sim did not stop after its context ended")
	}
}
