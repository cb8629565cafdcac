package ready

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman/messages"
)

func TestValidate(t *testing.T) {
	fn := func(context.Context) error { return nil }
	cases := []struct {
		name        string
		check       messages.ReadyCheck
		allowOutput bool
		want        string // "" for valid; else a part of the error
	}{
		{"tcp", messages.ReadyCheck{TCP: "127.0.0.1:5000"}, false, ""},
		{"tcp ipv6", messages.ReadyCheck{TCP: "[::1]:5000"}, false, ""},
		{"tcp any host", messages.ReadyCheck{TCP: ":5000"}, false, ""},
		{"http", messages.ReadyCheck{HTTP: "http://127.0.0.1:8080/healthz"}, false, ""},
		{"https", messages.ReadyCheck{HTTP: "https://example.com"}, false, ""},
		{"output", messages.ReadyCheck{Output: `listening on :\d+`}, true, ""},
		{"func", messages.ReadyCheck{Func: fn, Timeout: time.Second, Interval: time.Millisecond}, false, ""},
		{"no target", messages.ReadyCheck{}, true, "ready check with no target"},
		{"no target, only durations", messages.ReadyCheck{Timeout: time.Second}, true, "ready check with no target"},
		{"two targets", messages.ReadyCheck{TCP: ":1", Func: fn}, true, "more than one target (TCP, Func)"},
		{"all targets", messages.ReadyCheck{TCP: ":1", HTTP: "http://h", Output: "x", Func: fn}, true, "(TCP, HTTP, Output, Func)"},
		{"negative timeout", messages.ReadyCheck{Func: fn, Timeout: -1}, false, "negative ready timeout"},
		{"negative interval", messages.ReadyCheck{Func: fn, Interval: -time.Second}, false, "negative ready interval"},
		{"tcp without port", messages.ReadyCheck{TCP: "127.0.0.1"}, false, "is not host:port"},
		{"tcp empty port", messages.ReadyCheck{TCP: "127.0.0.1:"}, false, "is not host:port"},
		{"http relative", messages.ReadyCheck{HTTP: "/healthz"}, false, "not an absolute http or https URL"},
		{"http other scheme", messages.ReadyCheck{HTTP: "ftp://h/x"}, false, "not an absolute http or https URL"},
		{"http no host", messages.ReadyCheck{HTTP: "http:///x"}, false, "not an absolute http or https URL"},
		{"http unparsable", messages.ReadyCheck{HTTP: "http://[::1"}, false, "not an absolute http or https URL"},
		{"output bad regexp", messages.ReadyCheck{Output: "(unclosed"}, true, "is not a valid regexp"},
		{"output not allowed", messages.ReadyCheck{Output: "ready"}, false, "an Output ready check needs Supervise's captured output"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.check, tc.allowOutput)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, messages.ErrInvalid)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
