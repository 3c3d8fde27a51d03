package cli

import (
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/admin"
)

func TestLogViewLine(t *testing.T) {
	t.Parallel()
	read := time.Date(2026, 1, 2, 3, 4, 5, 999_000_000, time.UTC) // when the parent read the line
	plain := logView{loc: time.UTC}
	tests := []struct {
		name string
		view logView
		text string
		want string
	}{
		{"hclog json", plain,
			`{"@level":"info","@message":"blob stored","@module":"svc-storage","@timestamp":"2026-01-02T03:04:05.123456Z","cid":"b3-abc","bytes":1024}`,
			"2026-01-02 03:04:05.123 INFO  storage: blob stored cid=b3-abc bytes=1024"},
		{"time level msg json", plain,
			`{"time":"2026-01-02T03:04:05.5Z","level":"WARN","msg":"slow disk","took":"1.2s","path":"/var/lib/a b"}`,
			`2026-01-02 03:04:05.500 WARN  storage: slow disk took=1.2s path="/var/lib/a b"`},
		{"service field spliced in by the parent", plain,
			`{"@level":"error","@message":"boom","service":"storage","error":"disk full"}`,
			`2026-01-02 03:04:05.999 ERROR storage: boom error="disk full"`},
		{"another service's field stays", plain,
			`{"level":"debug","msg":"peer","service":"dht","nested":{"a":[1,2]},"ok":true,"n":null}`,
			`2026-01-02 03:04:05.999 DEBUG storage: peer service=dht nested={"a":[1,2]} ok=true n=null`},
		{"other module stays", plain,
			`{"@level":"trace","@message":"x","@module":"svc-storage.gc"}`,
			"2026-01-02 03:04:05.999 TRACE storage: x module=svc-storage.gc"},
		{"hclog text", plain,
			"2026-01-02T03:04:05.250Z [WARN]  svc-storage: compaction behind: backlog=3",
			"2026-01-02 03:04:05.250 WARN  storage: svc-storage: compaction behind: backlog=3"},
		{"plain text", plain, "panic: boom", "2026-01-02 03:04:05.999 -     storage: panic: boom"},
		{"json that is no log line", plain, `{"a":1}`, `2026-01-02 03:04:05.999 -     storage: {"a":1}`},
		{"broken json", plain, `{"@level":"info",`, `2026-01-02 03:04:05.999 -     storage: {"@level":"info",`},
		{"trailing garbage", plain, `{"level":"info","msg":"m"} tail`, `2026-01-02 03:04:05.999 -     storage: {"level":"info","msg":"m"} tail`},
		{"bad time falls back to read time", plain, `{"time":"yesterday","level":"info","msg":"m"}`,
			"2026-01-02 03:04:05.999 INFO  storage: m time=yesterday"},
		{"warning and fatal", plain, `{"level":"warning","msg":"w"}`, "2026-01-02 03:04:05.999 WARN  storage: w"},
		{"zone", logView{loc: time.FixedZone("X", 3600)}, `{"level":"info","msg":"m"}`, "2026-01-02 04:04:05.999 INFO  storage: m"},
		{"colour", logView{loc: time.UTC, color: true}, `{"level":"error","msg":"m"}`, "2026-01-02 03:04:05.999 \x1b[1;31mERROR\x1b[0m storage: m"},
		{"colour of an unknown level", logView{loc: time.UTC, color: true}, `{"level":"notice","msg":"m"}`, "2026-01-02 03:04:05.999 NOTICE storage: m"},
		{"raw", logView{raw: true}, `{"@level":"info","@message":"m"}`, `{"@level":"info","@message":"m"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.view.line("storage", admin.LogLine{Time: read, Stream: "stderr", Text: tc.text})
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	if got := plain.line("storage", admin.LogLine{Text: "x"}); got != "- -     storage: x" {
		t.Errorf("no time at all: %q", got)
	}
}
