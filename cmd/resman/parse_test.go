package main

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseProcfile(t *testing.T) {
	types, err := parseProcfile("P", strings.NewReader("# c\r\n\nweb: bundle exec rails s -p $PORT\r\nworker_2:echo a: b\n  clock-x :  sleep 1  \n"))
	require.NoError(t, err)
	require.Equal(t, []procType{
		{Name: "web", Command: "bundle exec rails s -p $PORT", Line: 3},
		{Name: "worker_2", Command: "echo a: b", Line: 4},
		{Name: "clock-x", Command: "sleep 1", Line: 5},
	}, types)
}

func TestParseEnv(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "A=1", want: "A=1"},
		{in: "export A = 1 ", want: "A=1"},
		{in: `A="a\nb\t\"c\"\\" # note`, want: "A=a\nb\t\"c\"\\"},
		{in: `A='$x \n' `, want: `A=$x \n`},
		{in: "A=b # c", want: "A=b"},
		{in: "A=b#c", want: "A=b#c"},
		{in: "A=", want: "A="},
		{in: "A.b_C=1", want: "A.b_C=1"},
		{in: "1A=1", err: "f:1: want KEY=VALUE"},
		{in: `A="x" y`, err: `f:1: A: text after the closing quote: "y"`},
		{in: `A='x`, err: `f:1: A: no closing '`},
	} {
		env, err := parseEnv("f", strings.NewReader(tc.in))
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, []string{tc.want}, env, tc.in)
	}
}

func TestFormationAndPorts(t *testing.T) {
	types := []procType{{Name: "web"}, {Name: "worker"}, {Name: "clock"}}
	for _, tc := range []struct {
		m     string
		names []string
		want  []string // key:port
		err   string
	}{
		{m: "", want: []string{"web.1:5000", "worker.1:5100", "clock.1:5200"}},
		{m: "web=2, worker=0", want: []string{"web.1:5000", "web.2:5001", "clock.1:5200"}},
		{m: "all=2,clock=0", want: []string{"web.1:5000", "web.2:5001", "worker.1:5100", "worker.2:5101"}},
		{m: "worker=3", names: []string{"worker"}, want: []string{"worker.1:5100", "worker.2:5101", "worker.3:5102"}},
		{m: "web=-1", err: "want name=count"},
		{m: "web", err: "want name=count"},
		{m: "db=1", err: `no process type "db"`},
		{m: "all=0", err: "nothing to run"},
		{names: []string{"db"}, err: `no process type "db"`},
	} {
		counts, err := parseFormation(tc.m, types)
		var ins []instance
		if err == nil {
			ins, err = formation(types, counts, tc.names, 5000)
		}
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.m)
			continue
		}
		require.NoError(t, err, tc.m)
		var got []string
		for _, in := range ins {
			got = append(got, fmt.Sprintf("%s:%d", in.Key, in.Port))
		}
		require.Equal(t, tc.want, got, tc.m)
	}
}

// writes records every Write it gets.
type writes struct {
	mu sync.Mutex
	w  []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.w = append(w.w, string(p))
	return len(p), nil
}

func TestPrinterWritesWholeLines(t *testing.T) {
	w := &writes{}
	names := []string{"a.1", "bb.1", "resman"}
	p := newPrinter(w, false, names, map[string]int{})
	const per = 2000
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() {
			for i := range per {
				p.Line(n, time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local), fmt.Sprintf("%s line %d %s", n, i, strings.Repeat("x", i%300)))
			}
		})
	}
	wg.Wait()
	p.Close()
	p.Line("a.1", time.Now(), "after Close") // dropped
	line := regexp.MustCompile(`^03:04:05 (a\.1   |bb\.1  |resman) \| (\S+) line (\d+) x*$`)
	next := map[string]int{}
	for _, write := range w.w {
		require.True(t, strings.HasSuffix(write, "\n"), "a write ends a line")
		for l := range strings.SplitSeq(strings.TrimSuffix(write, "\n"), "\n") {
			m := line.FindStringSubmatch(l)
			require.NotNil(t, m, "%q", l)
			require.Equal(t, strings.TrimSpace(m[1]), m[2], "the prefix is the line's own")
			require.Equal(t, fmt.Sprint(next[m[2]]), m[3], "in order per name")
			next[m[2]]++
		}
	}
	for _, n := range names {
		require.Equal(t, per, next[n], n)
	}
}

func TestPrinterColours(t *testing.T) {
	w := &writes{}
	p := newPrinter(w, true, []string{"web.1", "worker.1"}, map[string]int{"web.1": 0, "worker.1": 1})
	p.Line("web.1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local), "hi")
	p.Line("worker.1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local), "ho")
	p.Close()
	require.Equal(t, "03:04:05 \x1b[36mweb.1    |\x1b[0m hi\n03:04:05 \x1b[33mworker.1 |\x1b[0m ho\n", strings.Join(w.w, ""))
}
