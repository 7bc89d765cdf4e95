package bridge

import (
	"errors"
	"fmt"
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
		nopts = append(nopts, nats.UserCredentials(c.creds))
	}
	if c.user != "" {
		nopts = append(nopts, nats.UserInfo(c.user, c.pass))
	}
	if c.rootCA != "" {
		nopts = append(nopts, nats.RootCAs(c.rootCA))
	}
	nopts = append(nopts, c.extra...)
	nc, err := nats.Connect(c.url, nopts...)
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		return nil, nil, fmt.Errorf("bridge: connect to NATS at %s: the server refused the credentials: check %s.Creds, User and Password: %w", c.url, c.cfg, err)
	default:
		return nil, nil, fmt.Errorf("bridge: connect to NATS at %s: %w: is a NATS server running there? check %s.URL", c.url, err, c.cfg)
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
