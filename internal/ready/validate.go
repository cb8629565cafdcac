package ready

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/resman-dev/resman/messages"
)

// Validate reports, wrapping messages.ErrInvalid, what is wrong with c:
// not exactly one target among TCP, HTTP, Output and Func, a negative
// Timeout or Interval, a TCP target that is not host:port, an HTTP target
// that is not an absolute http or https URL, an Output that is not a Go
// regexp, or an Output check where allowOutput is false (only Supervise
// captures a run's output).
func Validate(c messages.ReadyCheck, allowOutput bool) error {
	targets := targets(c)
	switch {
	case len(targets) == 0:
		return fmt.Errorf("%w: ready check with no target", messages.ErrInvalid)
	case len(targets) > 1:
		return fmt.Errorf("%w: ready check with more than one target (%s)", messages.ErrInvalid, strings.Join(targets, ", "))
	case c.Timeout < 0:
		return fmt.Errorf("%w: negative ready timeout %v", messages.ErrInvalid, c.Timeout)
	case c.Interval < 0:
		return fmt.Errorf("%w: negative ready interval %v", messages.ErrInvalid, c.Interval)
	}
	switch {
	case c.TCP != "":
		if _, port, err := net.SplitHostPort(c.TCP); err != nil || port == "" {
			return fmt.Errorf("%w: ready check TCP %q is not host:port", messages.ErrInvalid, c.TCP)
		}
	case c.HTTP != "":
		u, err := url.Parse(c.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: ready check HTTP %q is not an absolute http or https URL", messages.ErrInvalid, c.HTTP)
		}
	case c.Output != "":
		if !allowOutput {
			return fmt.Errorf("%w: an Output ready check needs Supervise's captured output", messages.ErrInvalid)
		}
		if _, err := regexp.Compile(c.Output); err != nil {
			return fmt.Errorf("%w: ready check Output %q is not a valid regexp: %v", messages.ErrInvalid, c.Output, err)
		}
	}
	return nil
}

// targets names the targets c sets, by field name.
func targets(c messages.ReadyCheck) []string {
	var set []string
	if c.TCP != "" {
		set = append(set, "TCP")
	}
	if c.HTTP != "" {
		set = append(set, "HTTP")
	}
	if c.Output != "" {
		set = append(set, "Output")
	}
	if c.Func != nil {
		set = append(set, "Func")
	}
	return set
}
