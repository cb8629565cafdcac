// Package resman makes cleanup a guarantee. A program registers the OS
// processes, goroutine tasks and other resources it starts with a
// [Manager]; the manager stops a process gracefully (signal, grace period,
// SIGKILL, reap), cancels a task and waits for it, runs a resource's cleanup
// function, cleans up everything at once at shutdown, and reports the status
// of everything it tracks.
//
// # Processes
//
// [Manager.StartProcess] starts an [os/exec.Cmd] in a process group of its
// own, with a parent-death SIGKILL, and registers it atomically (if the key
// is taken, the command is not started). [Manager.RegisterProcess] tracks a
// command the caller started. From then on the manager reaps the process
// when it exits: no zombies, and the exit code shows in [Manager.Status].
//
// [Manager.StopProcess] sends SIGTERM (or [WithSignal]'s signal) to the
// process group when the process leads one, else to the process alone —
// never to the caller's own group — waits up to the grace period, SIGKILLs
// the group, waits until none of it is left, reaps and unregisters. The
// leader is reaped last, so its PID and group id stay reserved while
// signals fly: no signal can reach a process that reused the PID.
//
// When a process that leads its own group exits on its own, what is left of
// its group is stopped too (SIGTERM, the default grace period, SIGKILL) before
// the leader is reaped, as systemd's KillMode=control-group does.
//
// What a process-group stop cannot reach: a descendant that left the group
// with setsid or setpgid (a daemonizing double fork does). [WithCgroup]
// closes that gap where a writable cgroup v2 hierarchy exists: each process
// started through StartProcess gets a cgroup of its own at clone time, and a
// stop signals every member and then writes cgroup.kill. A descendant can
// still leave by writing its PID to another cgroup's cgroup.procs, which
// only root, or the user the cgroup subtree is delegated to, may do.
//
// A process orphaned in a tree (a shell's background child outliving the
// shell, a daemon's double fork) goes to PID 1, which reaps its zombie when
// it gets round to it — or never, when the Go program is PID 1 itself.
// [WithSubreaper] makes the program a child subreaper: orphans come to it,
// and the manager reaps those of tracked trees (by process group or cgroup)
// as they die and when their tree is stopped, so a stopped tree leaves
// nothing behind, not even a zombie. It never waits for "any child": a
// process other code starts keeps its exit status for that code's Wait.
//
// If the program itself dies, even by SIGKILL, a small watcher process (sh
// and awk, in a process group of its own) that holds a pipe from the program
// kills every tracked group and cgroup when the pipe closes. It removes no
// cgroup: the emptied ones stay for whoever owns the WithCgroup directory to
// remove. A parent-death signal alone would not do: it reaches only direct
// children, and fires when the forking OS thread exits rather than the
// process (golang/go#27505).
//
// Exits are watched through pidfds in Go's netpoller: a thousand idle
// processes cost a thousand parked goroutines, not a thousand OS threads.
//
// # Tasks
//
// [StartTask] runs a function in a goroutine with its own cancellable
// context and records its result; a panic is recovered into [ErrPanicked].
// [Manager.Go] starts and registers one atomically. [Manager.CancelTask]
// cancels and waits up to the grace period; a goroutine that ignores its
// context cannot be killed, so it is reported ([ErrTimeout], and a log line
// with its key), never forgotten.
//
// # Custom resources
//
// [Manager.RegisterCustomResource] tracks any value with a [CleanupFunc];
// [Manager.RegisterCloser] tracks an [io.Closer]. The cleanup gets a context
// with the grace-period deadline; its error, panic or overrun is returned.
//
// # Supervision
//
// [Manager.Supervise] runs a [ProcessSpec] as a supervised process: each
// run gets its own process group (a cgroup with [WithCgroup]) and a
// parent-death signal, and its stdout and stderr are captured line by line
// ([Manager.Tail], [WithOutputHook], the logger, and actors subscribed with
// Output). [WithRestart] restarts runs by a [RestartPolicy] (never, on
// failure, always; exponential backoff with jitter, a reset after a long
// run, and an optional limit within a window, past which the process stays
// registered in StateFailed and waiters get [ErrRestartLimit]); a run that
// resman ended is never restarted, and a stop during a backoff cancels the
// restart. [Manager.RestartProcess] restarts by hand. [Manager.Go] takes a
// policy too; the returned Task then stands for the whole supervision.
//
// [DependsOn] orders resources: CleanupAll, Shutdown and a parent actor's
// stop end dependents first (independent ones at once), a stop of a
// resource stops its dependents first, and unregistering a dependency is
// refused. [WithReady] makes Supervise, StartProcess and Go return once the
// first run is ready (a TCP port, an HTTP 2xx, an output line, a func); a
// dependent waits for it. [WithStopSignal] and [WithGracePeriod] set what
// every stop of a resource uses, CleanupAll's included.
//
// # Operability
//
// [WithMeterProvider] reports OpenTelemetry metrics: what is tracked by
// kind and state, every operation with its outcome and duration, restarts,
// and each running process's CPU time and memory. [Manager.HandleSignals]
// makes a program shut down on SIGINT or SIGTERM: the first signal starts
// [Manager.Shutdown], a second one kills what is left at once.
//
// # Across machines
//
// Package remote serves a Manager to other machines over protoactor-go's
// remote (gRPC with mutual TLS) and drives managers served elsewhere with
// the calls that carry plain data: Supervise, StopProcess, RestartProcess,
// WaitProcess, Status, Tail, CleanupAll and events. Errors keep their
// identity across the wire; a node that is down or cannot be reached gives
// [ErrUnreachable].
//
// # Guarantees
//
// Every stop, cancel and cleanup runs at most once per registration,
// whatever races with it (a second stop waits for the first and returns its
// result). A Register call that returns an error tracked nothing; one that
// returns nil tracked it. A caller's context ending only ends that caller's
// wait: the stop it started still completes. [Manager.CleanupAll] stops
// everything concurrently, so it takes about as long as the slowest stop,
// and returns every failure joined. [Manager.Shutdown] refuses new work with
// [ErrClosed], cleans up, stops the actors and is idempotent.
//
// # Errors
//
// Every error about a resource is a *[ResourceError] with its Kind, Key and
// Op, printed as `resman: <op> <kind> "<key>": <cause>`, that wraps one of
// [ErrAlreadyRegistered], [ErrNotRegistered], [ErrInvalid], [ErrTimeout],
// [ErrPanicked], [ErrClosed], or the underlying cause. Bad input never panics.
//
// # Actors
//
// resman is built on protoactor-go. A supervisor actor owns the registry
// (no lock guards it) and every tracked resource has a child actor that owns
// it and does the blocking work in goroutines of its own, so the supervisor
// never waits. A child whose resource has ended serves the next
// registration; children left unused for a second are stopped, but for a
// few. Each Manager method is one request message; actors
// can send the same requests (package messages) to [Manager.PID] and get
// exactly one typed reply each.
//
// [Props] spawns the supervisor under an actor of your own and [Attach]
// wraps it in a Manager. When an ancestor stops, protoactor stops the
// supervisor's children first: each child ends its resource (stop, cancel or
// cleanup, with the default grace period) before it reports Stopped, so the
// supervisor's Stopped means everything it tracked is cleaned up. While
// stopping, it refuses requests with [ErrClosed].
//
// Supervision: the supervisor and its children recover their own panics and
// go on serving, so a bug in one resource's handling never loses the
// resource or the registry; should protoactor still see a child fail, the
// supervisor's strategy resumes it, its state intact (a restart would
// re-create it, and stopping would lose the resource).
//
// Events: [WithEventHook] and messages.Subscribe deliver an [Event] for every
// registration, exit, stop, failure and unregistration, in order per
// resource, from a goroutine of the supervisor's: a slow hook delays only
// later events, never the supervisor or [Manager.Shutdown]. The hook may call
// any Manager method, Shutdown and Close included. Events still queued when
// Shutdown returns are delivered after it; [Manager.Done] is closed once the
// last one was.
//
// Registrations are all or nothing: when a RegisterX, StartProcess or Go
// call returns an error, nothing is tracked. If the caller's context ends
// while the request waits for the supervisor, the call returns an error
// wrapping ctx's and the registration, should the supervisor have made it,
// is undone in order — a started process stopped, a started task cancelled,
// a custom resource dropped without its cleanup (the caller still owns it) —
// before any later request of the same caller is served. Which of the two
// happened the caller cannot tell: after such an error, cancelling a Task
// again is harmless, and a process given to RegisterProcess may be being
// stopped and reaped by the manager (leave its cmd alone; its
// cmd.ProcessState is set once that is done).
package resman
