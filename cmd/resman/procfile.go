package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// procType is one line of a Procfile: a process type and its command.
type procType struct {
	Name    string
	Command string // run as sh -c Command
	Line    int    // where it is in the Procfile
}

// lineError is an error in an input file, printed file:line: message.
type lineError struct {
	File string
	Line int
	Msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// procName is foreman's grammar for a process type's name. A '.' is not
// allowed: instances are named name.N.
var procName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// parseProcfile reads a Procfile (foreman's grammar: "name: command" lines,
// '#' comments, blank lines). file names it in errors.
func parseProcfile(file string, r io.Reader) ([]procType, error) {
	var types []procType
	seen := map[string]int{}
	err := eachLine(file, r, func(n int, line string) error {
		name, cmd, ok := strings.Cut(line, ":")
		name, cmd = strings.TrimSpace(name), strings.TrimSpace(cmd)
		switch {
		case !ok:
			return &lineError{file, n, fmt.Sprintf("want \"name: command\", got %q", line)}
		case !procName.MatchString(name):
			return &lineError{file, n, fmt.Sprintf("bad process type name %q (letters, digits, '_' and '-' only)", name)}
		case cmd == "":
			return &lineError{file, n, fmt.Sprintf("process type %q has no command", name)}
		}
		if first, dup := seen[name]; dup {
			return &lineError{file, n, fmt.Sprintf("process type %q is already on line %d", name, first)}
		}
		seen[name] = n
		types = append(types, procType{Name: name, Command: cmd, Line: n})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(types) == 0 {
		return nil, fmt.Errorf("%s: no process types (want \"name: command\" lines)", file)
	}
	return types, nil
}

// envKey is a variable name an env file may set.
var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// parseEnv reads an env file in dotenv's syntax: KEY=VALUE lines (an
// optional "export " before), '#' comments, blank lines; a value in double
// quotes may hold \n, \t, \" and \\ escapes, one in single quotes is taken
// as it is, an unquoted one ends before " #". It returns KEY=VALUE entries.
func parseEnv(file string, r io.Reader) ([]string, error) {
	var env []string
	err := eachLine(file, r, func(n int, line string) error {
		line = strings.TrimPrefix(line, "export ")
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || !envKey.MatchString(key) {
			return &lineError{file, n, fmt.Sprintf("want KEY=VALUE, got %q", line)}
		}
		v, err := envValue(strings.TrimSpace(val))
		if err != nil {
			return &lineError{file, n, fmt.Sprintf("%s: %v", key, err)}
		}
		env = append(env, key+"="+v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return env, nil
}

// eachLine calls fn with the number and the trimmed text of each line of r
// that is neither blank nor a '#' comment (a '\r' before the '\n' goes),
// until fn fails; file names r in a read error.
func eachLine(file string, r io.Reader, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

func envValue(v string) (string, error) {
	switch {
	case strings.HasPrefix(v, `"`):
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == '"':
				if rest := strings.TrimSpace(v[i+1:]); rest != "" && !strings.HasPrefix(rest, "#") {
					return "", fmt.Errorf("text after the closing quote: %q", rest)
				}
				return b.String(), nil
			case c == '\\' && i+1 < len(v):
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				default:
					b.WriteByte(v[i])
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", fmt.Errorf("no closing \"")
	case strings.HasPrefix(v, "'"):
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", fmt.Errorf("no closing '")
		}
		if rest := strings.TrimSpace(v[end+2:]); rest != "" && !strings.HasPrefix(rest, "#") {
			return "", fmt.Errorf("text after the closing quote: %q", rest)
		}
		return v[1 : end+1], nil
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v), nil
}
