package web

import (
	"net/http"
	"time"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/hooks"
	"github.com/resman-dev/resman/internal/proc"
)

// The JSON of GET /status. Only what Status reports goes out: a
// ProcessSpec (environment, command line) is never in it.
type statusJSON struct {
	Processes       []processJSON `json:"processes"`
	Tasks           []taskJSON    `json:"tasks"`
	CustomResources []customJSON  `json:"custom_resources"`
}

type processJSON struct {
	Key          string    `json:"key"`
	PID          int       `json:"pid"`
	State        string    `json:"state"`
	RegisteredAt time.Time `json:"registered_at"`
	ExitCode     int       `json:"exit_code"`
	Restarts     int       `json:"restarts"`
	DependsOn    []refJSON `json:"depends_on"`
	CPUSeconds   float64   `json:"cpu_seconds"`
	MemoryBytes  int64     `json:"memory_bytes"`
	DroppedLines int       `json:"dropped_lines"`
}

type taskJSON struct {
	Key          string    `json:"key"`
	State        string    `json:"state"`
	RegisteredAt time.Time `json:"registered_at"`
	Error        string    `json:"error"`
	Restarts     int       `json:"restarts"`
	DependsOn    []refJSON `json:"depends_on"`
}

type customJSON struct {
	Key          string    `json:"key"`
	Type         string    `json:"type"`
	State        string    `json:"state"`
	RegisteredAt time.Time `json:"registered_at"`
	DependsOn    []refJSON `json:"depends_on"`
}

type refJSON struct {
	Kind string `json:"kind"`
	Key  string `json:"key"`
}

// outputJSON is an output line, in /tail and in /events.
type outputJSON struct {
	Key       string    `json:"key"`
	PID       int       `json:"pid"`
	Stream    string    `json:"stream"`
	Text      string    `json:"text"`
	At        time.Time `json:"at"`
	Truncated bool      `json:"truncated"`
}

func outputOf(l resman.OutputLine) outputJSON {
	return outputJSON{Key: l.Key, PID: l.PID, Stream: l.Stream, Text: l.Text, At: l.At, Truncated: l.Truncated}
}

func refsOf(refs []resman.Ref) []refJSON {
	out := make([]refJSON, len(refs))
	for i, r := range refs {
		out[i] = refJSON{Kind: r.Kind.String(), Key: r.Key}
	}
	return out
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.m.Status(r.Context())
	if err != nil {
		writeError(w, errorStatus(err), safeError(err))
		return
	}
	writeJSON(w, http.StatusOK, statusOf(st, hooks.CgroupRoot(h.m)))
}

// hasUsage reports whether p's CPU time and memory can be read: it has a
// live process.
func hasUsage(p resman.ProcessStatus) bool {
	return p.PID > 0 && (p.State == resman.StateRunning || p.State == resman.StateStarting || p.State == resman.StateStopping)
}

func statusOf(st resman.Status, cgroupRoot string) statusJSON {
	out := statusJSON{
		Processes:       make([]processJSON, len(st.Processes)),
		Tasks:           make([]taskJSON, len(st.Tasks)),
		CustomResources: make([]customJSON, len(st.CustomResources)),
	}
	for i, p := range st.Processes {
		out.Processes[i] = processJSON{
			Key: p.Key, PID: p.PID, State: p.State.String(), RegisteredAt: p.RegisteredAt,
			ExitCode: p.ExitCode, Restarts: p.Restarts, DependsOn: refsOf(p.DependsOn),
			DroppedLines: p.DroppedLines,
		}
	}
	pids := make([]int, len(st.Processes))
	for i, p := range st.Processes {
		if hasUsage(p) {
			pids[i] = p.PID
		}
	}
	us, ok := proc.UsagesOf(pids, cgroupRoot)
	for i := range us {
		if ok[i] {
			out.Processes[i].CPUSeconds, out.Processes[i].MemoryBytes = us[i].CPU.Seconds(), us[i].Memory
		}
	}
	for i, t := range st.Tasks {
		out.Tasks[i] = taskJSON{
			Key: t.Key, State: t.State.String(), RegisteredAt: t.RegisteredAt,
			Error: safeError(t.Err), Restarts: t.Restarts, DependsOn: refsOf(t.DependsOn),
		}
	}
	for i, c := range st.CustomResources {
		out.CustomResources[i] = customJSON{
			Key: c.Key, Type: c.Type, State: c.State.String(), RegisteredAt: c.RegisteredAt,
			DependsOn: refsOf(c.DependsOn),
		}
	}
	return out
}
