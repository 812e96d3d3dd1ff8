package controllers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/partnerops/entitlement-operator/internal/metrics"
)

// logEvery is how often one cause of failing reconciles is logged while
// the API server cannot answer: an outage fails every object's reconcile,
// and a line per object per retry would bury everything else.
const logEvery = 30 * time.Second

// reconcileLogs builds a controller's loggers (the builder's
// LogConstructor, with the keys controller-runtime gives them) whose
// "Reconciler error" lines are rate-limited for errors that say the API
// server cannot answer now or the cached copy was stale: one line per cause
// every logEvery, with how many it left out. The errors themselves are
// returned as they are, so the workqueue's backoff retries them and
// controller-runtime's error metrics count them; entitlements_reconcile_retries_total
// counts those of an outage.
func reconcileLogs(base logr.Logger, controller, kind string, clk clock.PassiveClock) func(*reconcile.Request) logr.Logger {
	lim := &errorLimiter{controller: controller, clock: clk, logged: map[string]time.Time{}, hidden: map[string]int{}}
	log := logr.New(&limitedSink{LogSink: base.GetSink(), lim: lim}).WithValues("controller", controller)
	return func(req *reconcile.Request) logr.Logger {
		if req == nil {
			return log
		}
		return log.WithValues(kind, klog.KRef(req.Namespace, req.Name), "namespace", req.Namespace, "name", req.Name)
	}
}

type errorLimiter struct {
	controller string
	clock      clock.PassiveClock

	mu     sync.Mutex
	logged map[string]time.Time
	hidden map[string]int
}

// admit reports whether to log this error, and how many of its cause were
// left out since it was last logged.
func (l *errorLimiter) admit(err error) (bool, int) {
	outage := transient(err)
	if !outage && !apierrors.IsConflict(err) {
		return true, 0
	}
	if outage {
		metrics.ReconcileRetries.WithLabelValues(l.controller).Inc()
	}
	cause := causeOf(err)
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, seen := l.logged[cause]; seen && now.Sub(last) < logEvery {
		l.hidden[cause]++
		return false, 0
	}
	n := l.hidden[cause]
	l.logged[cause], l.hidden[cause] = now, 0
	return true, n
}

// limitedSink passes everything through but the rate-limited errors.
type limitedSink struct {
	logr.LogSink
	lim *errorLimiter
}

func (s *limitedSink) Error(err error, msg string, kv ...any) {
	if msg == "Reconciler error" {
		ok, hidden := s.lim.admit(err)
		if !ok {
			return
		}
		if hidden > 0 {
			kv = append(kv, "cause", causeOf(err), "notLogged", hidden)
		}
	}
	s.LogSink.Error(err, msg, kv...)
}

func (s *limitedSink) WithValues(kv ...any) logr.LogSink {
	return &limitedSink{LogSink: s.LogSink.WithValues(kv...), lim: s.lim}
}

func (s *limitedSink) WithName(name string) logr.LogSink {
	return &limitedSink{LogSink: s.LogSink.WithName(name), lim: s.lim}
}

// WithCallDepth keeps the caller the underlying sink reports right.
func (s *limitedSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return &limitedSink{LogSink: cd.WithCallDepth(depth), lim: s.lim}
	}
	return s
}

// transient reports errors that say the API server cannot be reached or
// cannot answer now, not that the request or the object is wrong.
func transient(err error) bool {
	var netErr net.Error
	switch {
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &netErr):
		return true
	}
	return false
}

// causeOf names what went wrong without the object it happened to: the
// API status code and reason, or the innermost error.
func causeOf(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		return fmt.Sprintf("%d %s", s.Code, s.Reason)
	}
	for {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				if transient(e) {
					return causeOf(e)
				}
			}
			return err.Error()
		}
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
