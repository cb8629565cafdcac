package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman/internal/certs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func parse(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	require.NotNil(t, b)
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

// A node certificate is good for both ends of a connection, for loopback
// and the extra hosts, under its CA only.
func TestIssue(t *testing.T) {
	ca, err := certs.NewCA("ca")
	require.NoError(t, err)
	n, err := ca.Issue("node", "10.0.0.5", "node.example")
	require.NoError(t, err)
	cert := parse(t, n.CertPEM)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		for _, host := range []string{"127.0.0.1", "::1", "localhost", "10.0.0.5", "node.example"} {
			_, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}, DNSName: host})
			require.NoErrorf(t, err, "usage %v host %s", usage, host)
		}
	}
	require.Error(t, cert.VerifyHostname("10.0.0.6"))

	other, err := certs.NewCA("other")
	require.NoError(t, err)
	_, err = cert.Verify(x509.VerifyOptions{Roots: other.Pool()})
	require.Error(t, err)
}

// Write and Load give a mutual TLS config that two ends accept each other
// with.
func TestWriteLoad(t *testing.T) {
	ca, err := certs.NewCA("ca")
	require.NoError(t, err)
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		n, err := ca.Issue(name)
		require.NoError(t, err)
		require.NoError(t, ca.Write(dir, name, n))
	}
	a, err := certs.Load(dir, "a")
	require.NoError(t, err)
	b, err := certs.Load(dir, "b")
	require.NoError(t, err)
	require.Equal(t, tls.RequireAndVerifyClientCert, a.ClientAuth)

	l, err := tls.Listen("tcp", "127.0.0.1:0", a)
	require.NoError(t, err)
	defer l.Close()
	done := make(chan error, 1)
	// Owned by the test: accepts one connection and handshakes.
	go func() {
		c, err := l.Accept()
		if err == nil {
			err = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), b)
	require.NoError(t, err)
	require.NoError(t, c.Handshake())
	require.NoError(t, c.Close())
	require.NoError(t, <-done)

	_, err = certs.Load(t.TempDir(), "a")
	require.Error(t, err)
}
