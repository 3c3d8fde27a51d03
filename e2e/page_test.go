package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium. Without it the test skips, naming the
// reason; under CI=true it fails instead (.ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI=true: the status page must be tested in a real browser (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): skipping the status page browser test")
	return ""
}

// browser starts a headless chromium with a fresh profile that makes no
// request of its own, and returns a tab context.
func browser(t *testing.T, execPath string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.NoSandbox, // the test may run as root
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	return ctx
}

// rowJS reads one service row of the page as "state|pid|restarts".
const rowJS = `(() => {
  const r = document.querySelector('#services tr[data-service=%q]');
  if (!r) return '';
  const c = (k) => r.querySelector('td.' + k).textContent.trim();
  return c('state') + '|' + c('pid') + '|' + c('restarts');
})()`

// The status page in a real browser: sign in with the admin token, see six
// running rows, kill -9 a child, and watch that row heal without a reload
// (the page follows the events stream with its session cookie). The page
// makes no request beyond the node's own origin.
func TestStatusPageInChromium(t *testing.T) {
	execPath := chromium(t)
	const token = "page-e2e-token"
	n := startNode(t, nodeOpts{env: []string{"RON_ADMIN_TOKEN=" + token}})
	ctx := browser(t, execPath)
	origin := "http://" + n.admin

	var mu sync.Mutex
	var foreign []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Request != nil && !strings.HasPrefix(e.Request.URL, origin+"/") {
			mu.Lock()
			foreign = append(foreign, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(tctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(what, expr string, out any) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		raw, err := chromedp.Run(tctx, chromedp.Evaluate[[]byte](expr))
		if err == nil {
			err = json.Unmarshal(raw, out)
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	do("open the page and sign in",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{})
			return err
		}),
		chromedp.Navigate(origin+"/"),
		chromedp.WaitVisible(`#signin input[name=token]`),
		chromedp.SendKeys(`#signin input[name=token]`, token),
		chromedp.Click(`#signin button`),
		chromedp.WaitVisible(`#services`),
	)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cookies, err := chromedp.Run(tctx, chromedp.Action[network.GetCookiesResult](
		func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
			return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		}))
	cancel()
	if err != nil {
		t.Fatalf("read cookies: %v", err)
	}
	var cookie string
	for _, c := range cookies.Cookies {
		if c.Name == "macronode_session" {
			cookie = fmt.Sprintf("HttpOnly=%v SameSite=%s value-has-token=%v", c.HTTPOnly, c.SameSite, strings.Contains(c.Value, token))
		}
	}
	if cookie != "HttpOnly=true SameSite=Strict value-has-token=false" {
		t.Errorf("session cookie: %q", cookie)
	}

	var rows int
	eventually(t, readyTimeout, func() (bool, string) {
		eval("count running rows", `document.querySelectorAll('#services tbody tr td.state-running').length`, &rows)
		return rows == len(planes), fmt.Sprintf("%d running rows, want %d", rows, len(planes))
	})
	// The live connection is up, and a marker proves later that the page was never reloaded.
	eventually(t, 10*time.Second, func() (bool, string) {
		var live string
		eval("read the live badge", `document.querySelector('#live').textContent`, &live)
		return live == "live", fmt.Sprintf("live badge %q", live)
	})
	do("mark the document", chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))

	var row string
	eval("read the storage row", fmt.Sprintf(rowJS, "storage"), &row)
	parts := strings.Split(row, "|")
	old, err := strconv.Atoi(parts[1])
	if len(parts) != 3 || err != nil || parts[0] != "running" || parts[2] != "0" {
		t.Fatalf("storage row %q, want running|<pid>|0", row)
	}
	signalChild(t, old, "svc-storage", syscall.SIGKILL)

	eventually(t, restartTimeout+20*time.Second, func() (bool, string) {
		eval("read the storage row", fmt.Sprintf(rowJS, "storage"), &row)
		p := strings.Split(row, "|")
		return len(p) == 3 && p[0] == "running" && p[1] != strconv.Itoa(old) && p[1] != "-" && p[2] == "1",
			fmt.Sprintf("storage row %q, want running|<new pid>|1", row)
	})
	var same bool
	var exits int
	eval("check the document", `window.__sameDocument === true`, &same)
	eval("count the exits", `document.querySelectorAll('#exits details[data-service=storage]').length`, &exits)
	if !same {
		t.Error("the page was reloaded; it must heal live")
	}
	if exits < 1 {
		t.Error("the storage exit is not listed under Last exits")
	}

	tctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	cancel()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !strings.HasPrefix(string(png), "\x89PNG") {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	path := filepath.Join(t.ArtifactDir(), "status-page.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))

	mu.Lock()
	defer mu.Unlock()
	if len(foreign) > 0 {
		t.Errorf("the page requested other origins: %v", foreign)
	}
}
