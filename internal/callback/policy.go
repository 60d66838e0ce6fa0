package callback

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Sentinel errors of CheckURL (the master answers 422 with them).
var (
	// ErrBadURL: not an absolute http or https URL.
	ErrBadURL = errors.New("callback_url must be an absolute http or https URL")
	// ErrForbidden: the URL's host is, or resolves to, an address the
	// operator forbids.
	ErrForbidden = errors.New("callback_url points to an address callbacks may not reach")
)

// MaxURLBytes bounds a callback URL.
const MaxURLBytes = 2048

// DefaultForbidden are the ranges a callback may not reach unless the
// operator allows them: what is inside the master's own network or the
// host itself (loopback, private, link-local with the clouds' metadata
// services, shared address space, unspecified, multicast, reserved), so
// that a user cannot make the master probe or call it.
func DefaultForbidden() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "64:ff9b::/96", "2001:db8::/32",
		// IPv6 forms that carry or translate to an IPv4 address, on hosts
		// with such routes: IPv4-compatible (::a.b.c.d), IPv4-translated
		// (::ffff:0:a.b.c.d), local NAT64, 6to4 and Teredo; and the
		// deprecated site-local and the discard-only ranges.
		"::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48", "2002::/16", "2001::/32", "fec0::/10", "100::/64",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// LocalNetworks are the networks of the host's interfaces: the cluster's
// own, forbidden to callbacks by default too.
func LocalNetworks() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("callback: interface addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil {
				out = append(out, p.Masked())
			}
		}
	}
	return out, nil
}

// Policy says which addresses callbacks may reach: any but the Forbidden
// ones, except that Allowed ones always may (the operator's
// --callback-allow).
type Policy struct {
	Forbidden []netip.Prefix
	Allowed   []netip.Prefix
	// Resolver resolves host names at CheckURL (nil: net.DefaultResolver).
	Resolver *net.Resolver
}

// Permits reports whether a callback may reach ip.
func (p *Policy) Permits(ip netip.Addr) bool {
	// Without its zone: a prefix contains no zoned address, so
	// fe80::1%eth0 would pass every check.
	ip = ip.Unmap().WithZone("")
	for _, a := range p.Allowed {
		if a.Contains(ip) {
			return true
		}
	}
	for _, f := range p.Forbidden {
		if f.Contains(ip) {
			return false
		}
	}
	return ip.IsValid()
}

// CheckURL refuses a callback URL that is not http or https, or whose
// host is or resolves to an address the policy forbids. The addresses are
// checked again when the master connects (Control): a name may resolve
// elsewhere by then.
func (p *Policy) CheckURL(ctx context.Context, raw string) error {
	if len(raw) > MaxURLBytes {
		return fmt.Errorf("%w: over %d bytes", ErrBadURL, MaxURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "" {
		return ErrBadURL
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if !p.Permits(ip) {
			return fmt.Errorf("%w: %s", ErrForbidden, ip)
		}
		return nil
	}
	r := p.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: cannot resolve %q", ErrForbidden, host)
	}
	for _, ip := range ips {
		if !p.Permits(ip) {
			// Without the address: the answer must not map the
			// operator's internal names for the caller.
			return fmt.Errorf("%w: %s resolves to a forbidden address", ErrForbidden, host)
		}
	}
	return nil
}

// Control is a net.Dialer's Control: it refuses to connect to an address
// the policy forbids, whatever the name resolved to (DNS rebinding).
func (p *Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbidden, address)
	}
	if !p.Permits(ap.Addr()) {
		return ErrForbidden
	}
	return nil
}

// ParsePrefixes parses a comma-separated list of CIDR prefixes or single
// addresses (--callback-allow).
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("callback: %q is neither a CIDR prefix nor an address", s)
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
	}
	return out, nil
}
