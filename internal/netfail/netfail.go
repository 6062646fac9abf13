// Package netfail tells the API clients (Graph, Okta) which failures of an
// HTTP request are worth retrying: a refused or reset connection or a
// timeout may pass; a host that does not exist, a TLS certificate that is
// not trusted, or a server that does not speak HTTP will not, and waiting
// for them only delays the error.
package netfail

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Failure is what a failed http.Client.Do means.
type Failure struct {
	Transient bool   // worth retrying
	Reason    string // for people: "connection refused", "the TLS certificate is not trusted: …"
	// TimedOut: the server took the connection (or never completed it) and
	// sent no answer in time. Each such try costs a whole timeout, so it
	// is retried once, not for ConnectBudget (MaxTimeouts).
	TimedOut bool
}

// MaxTimeouts is how many timed-out tries of one request a client makes
// before it gives up: a server that accepts and never answers made pulls
// wait five minutes and more, a timeout at a time, with nothing said.
const MaxTimeouts = 2

// ResponseTimeout bounds the wait for an answer's headers; the clients'
// transports set it (the whole request, body included, has a minute).
const ResponseTimeout = 30 * time.Second

// Classify reads the error http.Client.Do returned.
func Classify(err error) Failure {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return Failure{Reason: "host " + dnsErr.Name + " not found"}
	case errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalid):
		return Failure{Reason: "the server's TLS certificate is not accepted: " + innermost(err)}
	case errors.As(err, &recordErr) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return Failure{Reason: "the server does not speak TLS at this address (an http:// server?)"}
	case strings.Contains(err.Error(), "malformed HTTP") || strings.Contains(err.Error(), "tls: first record does not look like a TLS handshake"):
		return Failure{Reason: "the server does not answer HTTP: " + innermost(err)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return Failure{Transient: true, Reason: "connection refused"}
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return Failure{Transient: true, Reason: "connection reset"}
	case errors.As(err, &netErr) && netErr.Timeout():
		return Failure{Transient: true, TimedOut: true, Reason: "the server sent no answer in time (" + innermost(err) + ")"}
	case errors.As(err, &dnsErr) && dnsErr.IsTemporary:
		return Failure{Transient: true, Reason: "name lookup failed for now: " + innermost(err)}
	}
	return Failure{Transient: true, Reason: innermost(err)}
}

func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// ConnectBudget bounds how long a client waits, in all, for a server that
// cannot be reached before it gives up: long enough for a restart or a
// network blip, short enough that a wrong address fails in seconds.
const ConnectBudget = 15 * time.Second

// Backoff returns the exponential backoff (with jitter, 0.5 s doubling up
// to 30 s) the clients wait between retries that carry no Retry-After.
func Backoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 500 * time.Millisecond
	b.MaxInterval = 30 * time.Second
	b.MaxElapsedTime = 0 // the callers bound retries by count and by ConnectBudget
	b.Reset()
	return b
}
