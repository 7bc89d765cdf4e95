package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// conn is what both directions need to connect: InConfig's and OutConfig's
// connection fields.
type conn struct {
	cfg           string // "InConfig" or "OutConfig", for errors
	name          string // the connection's name, as the server shows it
	url           string
	creds         string
	user, pass    string
	rootCA        string
	reconnectWait time.Duration
	reconnected   func()        // called on each reconnection
	extra         []nats.Option // a direction's own options
}

// dial connects to NATS once (no retry: an unreachable URL fails now),
// with reconnection forever once connected, and opens JetStream on the
// connection with opts. Its errors name the cause and the fix.
func (c conn) dial(opts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream, error) {
	nopts := []nats.Option{
		nats.Name(c.name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(c.reconnectWait),
		nats.ReconnectHandler(func(*nats.Conn) { c.reconnected() }),
	}
	if c.creds != "" {
		if _, err := os.ReadFile(c.creds); err != nil {
			return nil, nil, fmt.Errorf("bridge: read the credentials file %s: %w: give %s.Creds a readable NATS credentials file (its JWT and NKey seed)", c.creds, err, c.cfg)
		}
		nopts = append(nopts, nats.UserCredentials(c.creds))
	}
	if c.user != "" {
		nopts = append(nopts, nats.UserInfo(c.user, c.pass))
	}
	if c.rootCA != "" {
		if err := checkCA(c.rootCA, c.cfg); err != nil {
			return nil, nil, err
		}
		nopts = append(nopts, nats.RootCAs(c.rootCA))
	}
	nopts = append(nopts, c.extra...)
	nc, err := nats.Connect(c.url, nopts...)
	if err != nil {
		return nil, nil, c.connectError(err)
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("bridge: JetStream on %s: %w", c.url, err)
	}
	return nc, js, nil
}

// errNoJetStream reports whether err says that nothing answers JetStream's
// API: JetStream is not enabled on the server or for the account.
func errNoJetStream(err error) bool {
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrNoResponders)
}

// apiError is the error for a failed JetStream API request (what: the
// request's subject, e.g. `stream "S"`) other than a missing stream or
// consumer, which each caller words with its own fix.
func apiError(url, what string, err error) error {
	switch {
	case errNoJetStream(err):
		return fmt.Errorf("bridge: JetStream is not enabled on %s for this account (nothing answers its API): start nats-server with -js (or enable it for the account): %w",
			url, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("bridge: %s on %s: no answer within the timeout: the server is slow or unreachable; check it, or raise the config's Timeout: %w", what, url, err)
	default:
		return fmt.Errorf("bridge: %s on %s: %w", what, url, err)
	}
}

// checkCA reads the CA file and checks that it holds PEM certificates, so
// that a bad file is not reported as a connection failure.
func checkCA(file, cfg string) error {
	pem, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("bridge: read the TLS CA file %s: %w: give %s.RootCA a readable PEM file of the certificate authorities that signed the server's certificate", file, err, cfg)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fmt.Errorf("bridge: the TLS CA file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----): give %s.RootCA the PEM file of the certificate authorities "+
			"that signed the server's certificate: %w", file, cfg, fs.ErrInvalid)
	}
	return nil
}

// connectError names the cause of a failed connection and its fix:
// credentials refused, TLS (wanted by one side only, or the handshake
// failing), nothing reachable at the URL, or else the server's error.
func (c conn) connectError(err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		record    tls.RecordHeaderError
		netErr    net.Error
		opErr     *net.OpError
	)
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		return fmt.Errorf("bridge: connect to NATS at %s: the server refused the credentials: check %s.Creds, User and Password: %w", c.url, c.cfg, err)
	case errors.Is(err, nats.ErrSecureConnRequired):
		return fmt.Errorf("bridge: connect to NATS at %s: the server requires TLS: give %s.RootCA the CA file that signed its certificate (or use a tls:// URL): %w", c.url, c.cfg, err)
	case errors.Is(err, nats.ErrSecureConnWanted) && c.rootCA == "":
		return fmt.Errorf("bridge: connect to NATS at %s: the tls:// URL asks for TLS, but the server does not offer it: enable TLS on the server, or connect with nats:// (fix %s.URL): %w", c.url, c.cfg, err)
	case errors.Is(err, nats.ErrSecureConnWanted):
		return fmt.Errorf("bridge: connect to NATS at %s: %s.RootCA asks for TLS, but the server does not offer it: enable TLS on the server, or drop %s.RootCA: %w", c.url, c.cfg, c.cfg, err)
	case errors.As(err, &unknownCA), errors.As(err, &verify), errors.As(err, &invalid):
		return fmt.Errorf("bridge: connect to NATS at %s: the TLS handshake failed, the server's certificate is not trusted: %w: give %s.RootCA the CA file that signed it", c.url, err, c.cfg)
	case errors.As(err, &hostname):
		return fmt.Errorf("bridge: connect to NATS at %s: the TLS handshake failed, the server's certificate is not for this host: %w: connect by a name the certificate holds (fix %s.URL), or reissue the certificate", c.url, err, c.cfg)
	case errors.As(err, &alert), errors.As(err, &record):
		return fmt.Errorf("bridge: connect to NATS at %s: the TLS handshake failed: %w: check the server's TLS configuration against %s.RootCA (and whether it wants a client certificate)", c.url, err, c.cfg)
	case errors.Is(err, nats.ErrNoServers), errors.As(err, &opErr), errors.As(err, &netErr):
		return fmt.Errorf("bridge: connect to NATS at %s: %w: is a NATS server running there? check %s.URL", c.url, err, c.cfg)
	default:
		return fmt.Errorf("bridge: connect to NATS at %s: %w", c.url, err)
	}
}
