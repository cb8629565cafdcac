package resman

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/resman-dev/resman/supervisor"
)

// HandleSignals makes the program shut the manager down on sigs (SIGINT
// and SIGTERM if none are given), as systemd and container runtimes expect
// of a service: the first signal starts Shutdown (it returns at once; wait
// for [Manager.Done]); a second one while the shutdown runs SIGKILLs what
// is left of every tracked process group and cgroup at once, instead of
// waiting out the grace periods, so that the shutdown ends promptly
// (cleanups already running go on; tasks have been cancelled by then).
// Later signals do the same again. The kill goes through the supervisor to
// each process's child, which owns that process's stop: no PID that may
// have been reaped is ever signalled.
//
// Once the manager is done (Done is closed) the signals are no longer
// caught, so a further one has its default effect. stop does that sooner:
// it undoes signal.Notify and ends the goroutine that listens; it is
// idempotent and returns once that goroutine has ended.
func (m *Manager) HandleSignals(sigs ...os.Signal) (stop func()) {
	if len(sigs) == 0 {
		sigs = []os.Signal{os.Interrupt, syscall.SIGTERM}
	}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, sigs...)
	quit, ended := make(chan struct{}), make(chan struct{})
	go m.watchSignals(ch, quit, ended) // owned by HandleSignals: ends at stop or once the manager is done
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-ended
	}
}

// watchSignals turns the signals on ch into a shutdown, then into kills.
func (m *Manager) watchSignals(ch chan os.Signal, quit, ended chan struct{}) {
	defer close(ended)
	defer signal.Stop(ch)
	first := true
	for {
		select {
		case <-ch:
			if first {
				first = false
				m.startShutdown()
				continue
			}
			m.killNow()
		case <-m.done:
			return
		case <-quit:
			return
		}
	}
}

// killNow asks the supervisor to SIGKILL every tracked process now, if it
// is still there and shutting down (it ignores the request otherwise).
func (m *Manager) killNow() {
	select {
	case <-m.gone:
	default:
		m.post(&supervisor.KillNow{}, nil) // dropped quietly if it has stopped since
	}
}
