package pyroscope

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A push is one unary call of Pyroscope's connect API: a POST of the
// binary protobuf request, answered 200 with a protobuf response, or with a
// connect error, a JSON {"code": ..., "message": ...} whose HTTP status
// follows from the code. Failures worth another try (the network, 408,
// 429, 5xx but 501) are retried within the context, with exponential
// backoff and full jitter, or after the server's Retry-After; any other
// answer is final. A 400 saying the profile is outside the ingestion
// window, or invalid, would be the same the next time.

const (
	contentTypeProto = "application/proto"
	userAgent        = "leakhunt-profiler"

	firstBackoff = 250 * time.Millisecond
	maxBackoff   = 8 * time.Second
	maxAttempts  = 10 // bounds a push whose context has no deadline

	maxErrorBody = 64 << 10 // read of an error response, for its message
	maxDrain     = 64 << 10 // read of any other response, so its connection can be reused
)

// An attemptResult is what one request came to.
type attemptResult struct {
	err        error         // nil: the push succeeded
	retry      bool          // another attempt may succeed
	retryAfter time.Duration // the server's Retry-After; -1 if none
}

// push sends body, retrying what is worth retrying while ctx allows, and
// returns nil or an error fit to log: scrubbed of secrets, naming the
// endpoint, the status and the server's message.
func (e *Exporter) push(ctx context.Context, body []byte) error {
	var last error // the failure of the attempt before, if it failed
	for attempt := 1; ; attempt++ {
		r := e.attempt(ctx, body)
		if r.err == nil {
			return nil
		}
		ctxErr := ctx.Err()
		switch {
		case ctxErr != nil && errors.Is(r.err, ctxErr):
			// The context cut the attempt short: the failure before it,
			// if any, says more about the server.
			return e.pushError(ctxErr, attempt, last, "")
		case !r.retry || attempt == maxAttempts:
			return e.pushError(r.err, attempt, nil, "")
		case ctxErr != nil:
			err := e.pushError(r.err, attempt, nil, "no time left for another attempt")
			err.ctxErr = ctxErr
			return err
		}
		last = r.err

		wait := rand.N(min(maxBackoff, firstBackoff<<(attempt-1)))
		if r.retryAfter >= 0 {
			wait = r.retryAfter
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			// Waiting would end in the context's error: return the
			// server's answer now, marked as the deadline's failure.
			note := "the next attempt was due after the deadline"
			if r.retryAfter >= 0 {
				note = fmt.Sprintf("the server asked to retry after %v, past the deadline", r.retryAfter)
			}
			err := e.pushError(r.err, attempt, nil, note)
			err.ctxErr = context.DeadlineExceeded
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return e.pushError(ctx.Err(), attempt, last, "")
		case <-t.C:
		}
	}
}

// attempt makes one request.
func (e *Exporter) attempt(ctx context.Context, body []byte) attemptResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return attemptResult{err: err}
	}
	req.Header = e.header.Clone()
	if deadline, ok := ctx.Deadline(); ok {
		// As connect clients do, so that the server gives up on the
		// request when the client has.
		if ms := time.Until(deadline).Milliseconds(); ms > 0 {
			req.Header.Set("Connect-Timeout-Ms", strconv.FormatInt(ms, 10))
		}
	}
	resp, err := e.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the method and the endpoint
		}
		var certErr *tls.CertificateVerificationError
		return attemptResult{err: err, retry: !errors.As(err, &certErr), retryAfter: -1}
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
		_ = resp.Body.Close()
	}()

	if resp.StatusCode == http.StatusOK {
		// A 200 of anything but a connect response is some other server,
		// such as a UI or a login page at a wrong URL, and the profile
		// went nowhere: connect clients check this too.
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != contentTypeProto {
			return attemptResult{err: fmt.Errorf("200 OK, but with Content-Type %q, not %s: is URL a Pyroscope server?",
				oneLine(resp.Header.Get("Content-Type"), 64), contentTypeProto), retryAfter: -1}
		}
		return attemptResult{}
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	status := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	// Scrubbed before it is cut: a secret cut short would not match.
	if text := oneLine(e.scrubber.scrub(serverMessage(resp.Header.Get("Content-Type"), msg)), maxMessageLen); text != "" {
		status += ": " + text
	}
	code := resp.StatusCode
	return attemptResult{
		err:        errors.New(status),
		retry:      code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 && code != http.StatusNotImplemented,
		retryAfter: retryAfter(resp.Header.Get("Retry-After")),
	}
}

// serverMessage returns the message of an error response: a connect
// error's code and message, or the body as text.
func serverMessage(contentType string, body []byte) string {
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "application/json" {
		var ce struct{ Code, Message string }
		if json.Unmarshal(body, &ce) == nil && (ce.Code != "" || ce.Message != "") {
			return strings.TrimPrefix(ce.Code+": "+ce.Message, ": ")
		}
	}
	return string(body)
}

// retryAfter returns the wait a Retry-After header asks for, in seconds or
// as a date, or -1 if it asks for none.
func retryAfter(v string) time.Duration {
	if v == "" {
		return -1
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if s < 0 || s > int64(24*time.Hour/time.Second) {
			return -1
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return -1
}

// pushError returns the error of a push that failed with err after
// attempts attempts, the last failure before err being last, if any, with
// a note, if any. Its text is scrubbed of secrets and one line. It wraps
// err if err is the context's, so that callers can tell a deadline.
func (e *Exporter) pushError(err error, attempts int, last error, note string) *pushError {
	msg := fmt.Sprintf("pyroscope: push to %s: %v", e.endpoint, err)
	if attempts > 1 {
		msg += fmt.Sprintf(" (after %d attempts)", attempts)
	}
	if last != nil {
		msg += fmt.Sprintf("; the last failure: %v", last)
	}
	if note != "" {
		msg += "; " + note
	}
	pe := &pushError{msg: oneLine(e.scrubber.scrub(msg), 0)}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		pe.ctxErr = err
	}
	return pe
}

// A pushError is the error of a failed push. It wraps the context's error
// when the context ended the push, and nothing else: the failures it
// describes are text, already scrubbed of secrets.
type pushError struct {
	msg    string
	ctxErr error
}

func (e *pushError) Error() string { return e.msg }
func (e *pushError) Unwrap() error { return e.ctxErr }
