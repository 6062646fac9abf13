package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeTLSGracefulShutdown serves HTTPS from a certificate and key
// file, and stops while a request is in flight: the request still gets
// its answer (and its write is applied), then serve exits 0.
func TestServeTLSGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	db := filepath.Join(dir, "d.db")
	s := startServe(t, db, "--tls-cert", certFile, "--tls-key", keyFile)
	base := s.base
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("address %q is not https", base)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz over TLS: %v %v", resp, err)
	}
	resp.Body.Close()

	// A POST whose body arrives in two halves, with the shutdown between.
	body := `{"userName":"late@example.com","emails":[{"type":"work","value":"late@example.com"}]}`
	bodyR, bodyW := io.Pipe()
	req, _ := http.NewRequest("POST", base+"/scim/v2/Users", bodyR)
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/scim+json")
	answer := make(chan *http.Response, 1)
	go func() {
		resp, err := hc.Do(req)
		if err != nil {
			t.Error(err)
		}
		answer <- resp
	}()
	io.WriteString(bodyW, body[:20])
	time.Sleep(200 * time.Millisecond) // the request is being read
	s.stop()
	time.Sleep(300 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "https://"), time.Second); err == nil {
		c.Close()
		t.Fatal("serve still accepts connections after the shutdown began")
	}
	io.WriteString(bodyW, body[20:])
	bodyW.Close()
	resp = <-answer
	if resp == nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("the request in flight: %v", resp)
	}
	resp.Body.Close()
	s.wait(t)
	if r := ok(t, cli(t, db, "", "users", "list")); !strings.Contains(r.stdout, "late@example.com") {
		t.Fatalf("the write of the request in flight is missing:\n%s", r.stdout)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their
// paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "usersync test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
