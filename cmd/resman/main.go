// Command resman runs the processes of a Procfile, as foreman, honcho,
// goreman and overmind do, and leaves nothing behind: every process (and
// with --cgroup, every descendant, daemonised or not) is stopped when one
// gives up, on Ctrl-C, and even when resman itself is SIGKILLed.
//
//	resman run [flags] [NAME...]   run the Procfile's processes (all, or the NAMEs)
//	resman check [flags]           validate the Procfile and env file, print the formation
//
// Each line runs as sh -c LINE with PORT and PS=name.N in its environment;
// its output is printed "HH:MM:SS name.N | text". See `resman run -h`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/resman-dev/resman"
)

const usage = `resman runs the processes of a Procfile and leaves nothing behind.

Usage:
  resman run [flags] [NAME...]   run the Procfile's processes (all, or the NAMEs)
  resman check [flags]           validate the Procfile and env file, print the formation

Run 'resman run -h' or 'resman check -h' for the flags.
`

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// cli runs resman with args and returns its exit code.
func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stderr)
	case "check":
		return checkCmd(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "resman: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// inputFlags are the flags run and check share.
type inputFlags struct {
	procfile, envFile, formation string
	port                         int
}

func (f *inputFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.procfile, "f", "Procfile", "the Procfile")
	fs.StringVar(&f.envFile, "e", "", "env file (default: .env beside the Procfile, when present)")
	fs.StringVar(&f.formation, "m", "", "formation: how many of each type, e.g. web=2,worker=1 (default 1 of each)")
	fs.IntVar(&f.port, "p", 5000, "base port: PORT = base + 100·(type's index in the Procfile) + instance − 1")
}

// load reads the Procfile and env file and lists the instances.
func (f *inputFlags) load(names []string) (dir string, env []string, ins []instance, err error) {
	types, err := readFile(f.procfile, parseProcfile)
	if err != nil {
		return "", nil, nil, err
	}
	dir = filepath.Dir(f.procfile)
	envFile := f.envFile
	if envFile == "" {
		if def := filepath.Join(dir, ".env"); fileExists(def) {
			envFile = def
		}
	}
	if envFile != "" {
		if env, err = readFile(envFile, parseEnv); err != nil {
			return "", nil, nil, err
		}
	}
	if f.port <= 0 || f.port > 65535 {
		return "", nil, nil, fmt.Errorf("-p %d: want a port from 1 to 65535", f.port)
	}
	counts, err := parseFormation(f.formation, types)
	if err != nil {
		return "", nil, nil, err
	}
	ins, err = formation(types, counts, names, f.port)
	if err != nil {
		return "", nil, nil, err
	}
	if last := ins[len(ins)-1].Port; last > 65535 {
		return "", nil, nil, fmt.Errorf("-p %d: %s would get port %d, over 65535", f.port, ins[len(ins)-1].Key, last)
	}
	return dir, env, ins, nil
}

func readFile[T any](path string, parse func(string, io.Reader) (T, error)) (T, error) {
	file, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer file.Close()
	return parse(path, file)
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// newFlagSet returns a flag set whose -h prints help, then the flags.
func newFlagSet(name, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help)
		fs.PrintDefaults()
	}
	return fs
}

const runHelp = `Usage: resman run [flags] [NAME...]

Runs the Procfile's processes (all, or the NAMEs), each line as sh -c LINE
with PORT and PS=name.N in its environment, restarts those that fail, and
prints their output as "HH:MM:SS name.N | text".

Exit: 0 when every process finished with code 0; a process's exit code
(128+signal) when it gives up restarting; 130, 143, 129 after SIGINT,
SIGTERM, SIGHUP (a second Ctrl-C kills everything at once).

Flags (-flag and --flag both work):
`

func runCmd(args []string, stderr io.Writer) int {
	fs := newFlagSet("run", runHelp, stderr)
	var in inputFlags
	in.register(fs)
	grace := fs.Duration("t", 5*time.Second, "grace period: how long processes have after SIGTERM before SIGKILL")
	restart := fs.String("restart", "on-failure", "restart policy: never, on-failure or always (with backoff)")
	maxRestarts := fs.Int("max-restarts", 5, "give up after this many restarts within 60s (0: never give up)")
	cgroup := fs.String("cgroup", "", "put each process in a cgroup v2 below `DIR`, so no descendant escapes a stop")
	httpAddr := fs.String("http", "", "serve the status page and /status on `ADDR` (loopback only unless --token)")
	token := fs.String("token", "", "bearer token the status page wants (needed for a non-loopback --http)")
	noColor := fs.Bool("no-color", false, "never colour the names (they are coloured only on a terminal)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "resman: %v\n", err)
		return exitUsage
	}
	dir, env, ins, err := in.load(fs.Args())
	if err != nil {
		return fail(err)
	}
	cfg := runConfig{dir: dir, env: env, instances: ins, grace: *grace, maxRestarts: *maxRestarts,
		cgroup: *cgroup, httpAddr: *httpAddr, token: *token}
	switch *restart {
	case "never":
		cfg.restart = resman.RestartNever
	case "on-failure":
		cfg.restart = resman.RestartOnFailure
	case "always":
		cfg.restart = resman.RestartAlways
	default:
		return fail(fmt.Errorf("--restart %q: want never, on-failure or always", *restart))
	}
	if *grace <= 0 {
		return fail(fmt.Errorf("-t %v: want a positive grace period", *grace))
	}
	if *maxRestarts < 0 {
		return fail(fmt.Errorf("--max-restarts %d: want 0 or more", *maxRestarts))
	}
	if *httpAddr != "" && *token == "" && !loopback(*httpAddr) {
		return fail(fmt.Errorf("--http %s: not a loopback address; give --token too (anyone who can reach it would see the processes)", *httpAddr))
	}
	out := newPrinter(os.Stdout, !*noColor && os.Getenv("NO_COLOR") == "" && isTerminal(os.Stdout), instanceKeys(ins), typeIndexes(ins))
	defer out.Close()
	r, err := newRunner(cfg, out)
	if err != nil {
		return fail(err)
	}
	return r.run()
}

// instanceKeys are the names the printer shows: every instance's, and the
// runner's own.
func instanceKeys(ins []instance) []string {
	keys := []string{"resman"}
	for _, in := range ins {
		keys = append(keys, in.Key)
	}
	return keys
}

func typeIndexes(ins []instance) map[string]int {
	idx := map[string]int{"resman": len(colors) - 1}
	for _, in := range ins {
		idx[in.Key] = in.Index
	}
	return idx
}

const checkHelp = `Usage: resman check [flags]

Validates the Procfile and the env file and prints the formation with the
ports (errors name the file and line). Exit 0 if both are valid, else 2.

Flags:
`

func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", checkHelp, stderr)
	var in inputFlags
	in.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "resman: check takes no arguments, got %q\n", strings.Join(fs.Args(), " "))
		return exitUsage
	}
	_, env, ins, err := in.load(nil)
	if err != nil {
		fmt.Fprintf(stderr, "resman: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: valid, %d processes", in.procfile, len(ins))
	if len(env) > 0 {
		fmt.Fprintf(stdout, ", %d variables from the env file", len(env))
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, i := range ins {
		fmt.Fprintf(tw, "%s\tPORT=%d\t%s\n", i.Key, i.Port, i.Cmd)
	}
	_ = tw.Flush()
	return 0
}
