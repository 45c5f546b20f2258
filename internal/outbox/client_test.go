package outbox_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/outbox"
)

func mustPrefixes(cidrs ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(cidrs))
	for i, c := range cidrs {
		out[i] = netip.MustParsePrefix(c)
	}
	return out
}

func TestAddressGuard(t *testing.T) {
	t.Parallel()
	cases := []struct {
		addr  string
		allow []string
		ok    bool
	}{
		{"93.184.216.34", nil, true},
		{"2606:2800:220:1:248:1893:25c8:1946", nil, true},
		{"127.0.0.1", nil, false},
		{"127.8.9.10", nil, false},
		{"::1", nil, false},
		{"10.1.2.3", nil, false},
		{"172.16.0.1", nil, false},
		{"192.168.1.1", nil, false},
		{"fd00::1", nil, false},
		{"169.254.169.254", nil, false}, // cloud metadata
		{"fe80::1", nil, false},
		{"100.64.0.1", nil, false},
		{"100.127.255.254", nil, false},
		{"224.0.0.1", nil, false},
		{"ff02::1", nil, false},
		{"0.0.0.0", nil, false},
		{"::", nil, false},
		{"255.255.255.255", nil, false},
		{"::ffff:127.0.0.1", nil, false},
		{"::ffff:10.0.0.1", nil, false},
		{"::ffff:169.254.169.254", nil, false},
		{"64:ff9b::7f00:1", nil, false},   // NAT64 of 127.0.0.1
		{"2002:7f00:1::1", nil, false},    // 6to4 of 127.0.0.1
		{"::127.0.0.1", nil, false},       // IPv4-compatible
		{"64:ff9b::5db8:d822", nil, true}, // NAT64 of a public address
		{"127.0.0.1", []string{"127.0.0.0/8"}, true},
		{"::ffff:127.0.0.1", []string{"127.0.0.0/8"}, true},
		{"::1", []string{"::1/128"}, true},
		{"10.1.2.3", []string{"10.1.0.0/16"}, true},
		{"10.2.2.3", []string{"10.1.0.0/16"}, false},
		{"127.0.0.1", []string{"10.0.0.0/8"}, false},
	}
	for _, c := range cases {
		g := outbox.AddressGuard{Allow: mustPrefixes(c.allow...)}
		err := g.Check(netip.MustParseAddr(c.addr))
		if c.ok {
			require.NoError(t, err, "%s allow %v", c.addr, c.allow)
		} else {
			require.ErrorIs(t, err, outbox.ErrForbiddenAddress, "%s allow %v", c.addr, c.allow)
		}
	}
}

func TestSignerMatchesSpecExample(t *testing.T) {
	t.Parallel()
	// The example of the Standard Webhooks specification.
	s, err := outbox.NewSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	ts := int64(1614265330)
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", unix(ts), []byte(`{"test": 2432232314}`))
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", got)

	_, err = outbox.NewSigner("not-a-secret")
	require.ErrorIs(t, err, outbox.ErrInvalidSecret)
	_, err = outbox.NewSigner()
	require.ErrorIs(t, err, outbox.ErrInvalidSecret)
}

func unix(s int64) time.Time { return time.Unix(s, 0) }
