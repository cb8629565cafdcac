package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// instance is one process the runner supervises: the n-th of its type.
type instance struct {
	Type  string
	Index int // of its type in the Procfile, from 0
	N     int // from 1
	Key   string
	Port  int
	Cmd   string
}

// parseFormation reads -m: "web=2,worker=1" ("all=N" sets every type). A
// type it does not name runs once.
func parseFormation(s string, types []procType) (map[string]int, error) {
	counts := map[string]int{}
	for _, t := range types {
		counts[t.Name] = 1
	}
	if strings.TrimSpace(s) == "" {
		return counts, nil
	}
	for item := range strings.SplitSeq(s, ",") {
		name, num, ok := strings.Cut(strings.TrimSpace(item), "=")
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("-m %q: want name=count (count 0 or more), got %q", s, item)
		}
		name = strings.TrimSpace(name)
		if name == "all" {
			for k := range counts {
				counts[k] = n
			}
			continue
		}
		if _, known := counts[name]; !known {
			return nil, fmt.Errorf("-m %q: no process type %q in the Procfile", s, name)
		}
		counts[name] = n
	}
	return counts, nil
}

// formation lists the instances to run: of every type, or only of names;
// PORT = base + 100·(index of the type in the Procfile) + n − 1.
func formation(types []procType, counts map[string]int, names []string, base int) ([]instance, error) {
	for _, n := range names {
		if !slices.ContainsFunc(types, func(t procType) bool { return t.Name == n }) {
			return nil, fmt.Errorf("no process type %q in the Procfile", n)
		}
	}
	var out []instance
	for i, t := range types {
		if len(names) > 0 && !slices.Contains(names, t.Name) {
			continue
		}
		for n := 1; n <= counts[t.Name]; n++ {
			out = append(out, instance{Type: t.Name, Index: i, N: n, Key: fmt.Sprintf("%s.%d", t.Name, n),
				Port: base + 100*i + n - 1, Cmd: t.Command})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("nothing to run: the formation has no processes")
	}
	return out, nil
}
