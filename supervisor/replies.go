package supervisor

import "github.com/resman-dev/resman/messages"

// errorReply returns the reply of request req carrying err, or nil if req is
// not a request.
func errorReply(req any, err error) any {
	switch req.(type) {
	case *messages.RegisterProcess:
		return &messages.RegisterProcessResponse{Err: err}
	case *messages.StartProcess:
		return &messages.StartProcessResponse{Err: err}
	case *messages.UnregisterProcess:
		return &messages.UnregisterProcessResponse{Err: err}
	case *messages.StopProcess:
		return &messages.StopProcessResponse{Err: err}
	case *messages.WaitProcess:
		return &messages.WaitProcessResponse{Err: err}
	case *messages.RegisterTask:
		return &messages.RegisterTaskResponse{Err: err}
	case *messages.Go:
		return &messages.GoResponse{Err: err}
	case *messages.UnregisterTask:
		return &messages.UnregisterTaskResponse{Err: err}
	case *messages.CancelTask:
		return &messages.CancelTaskResponse{Err: err}
	case *messages.RegisterCustomResource:
		return &messages.RegisterCustomResourceResponse{Err: err}
	case *messages.RegisterCloser:
		return &messages.RegisterCloserResponse{Err: err}
	case *messages.UnregisterCustomResource:
		return &messages.UnregisterCustomResourceResponse{Err: err}
	case *messages.CleanupCustomResource:
		return &messages.CleanupCustomResourceResponse{Err: err}
	case *messages.CleanupAll:
		return &messages.CleanupAllResponse{Err: err}
	case *messages.GetStatus:
		return &messages.GetStatusResponse{Err: err}
	case *messages.Shutdown:
		return &messages.ShutdownResponse{Err: err}
	case *messages.Subscribe:
		return &messages.SubscribeResponse{Err: err}
	case *messages.Unsubscribe:
		return &messages.UnsubscribeResponse{Err: err}
	}
	return nil
}
