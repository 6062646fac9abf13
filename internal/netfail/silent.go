package netfail

import (
	"net"
	"sync"
	"sync/atomic"
)

// Silent is a server that accepts connections and never answers: what a
// hung service or a black-holing proxy looks like. For tests of the
// clients; it counts the connections it took.
type Silent struct {
	Addr     string // host:port
	Accepted atomic.Int32

	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

// NewSilent listens on a loopback port.
func NewSilent() (*Silent, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Silent{Addr: ln.Addr().String(), ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.Accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	return s, nil
}

// Close stops listening and drops the connections held.
func (s *Silent) Close() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}
