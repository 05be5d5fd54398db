package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// checkPortsDomain settles the forwarded ports' domain (handlers/ports.go).
// Dev serves them on ports.localhost, which browsers and curl resolve to
// the loopback. In production the ports domain must be another
// registrable domain than the marketplace's: a workload's pages (which
// its machine's owner can rewrite) would otherwise be same-site with the
// marketplace, and SameSite cookies would not keep them out of it.
func (c *Config) checkPortsDomain() error {
	c.PortsDomain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(c.PortsDomain)), ".")
	if c.PortsDomain == "" && c.DevMode {
		c.PortsDomain = "ports.localhost"
	}
	if c.PortsDomain == "" {
		return nil
	}
	if strings.ContainsAny(c.PortsDomain, "/:*") || net.ParseIP(c.PortsDomain) != nil {
		return fmt.Errorf("--ports-domain %q: give a domain name, such as highway-ports.example (no scheme, port or wildcard)", c.PortsDomain)
	}
	if c.DevMode {
		return nil
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return fmt.Errorf("--base-url: %w", err)
	}
	base := u.Hostname()
	if net.ParseIP(base) != nil {
		return nil // an address has no site to share
	}
	bs, err1 := publicsuffix.EffectiveTLDPlusOne(base)
	ps, err2 := publicsuffix.EffectiveTLDPlusOne(c.PortsDomain)
	if err1 == nil && err2 == nil && bs == ps || strings.HasSuffix("."+base, "."+c.PortsDomain) || strings.HasSuffix("."+c.PortsDomain, "."+base) {
		return fmt.Errorf("--ports-domain %s shares a site with the marketplace (%s): forwarded pages would be same-site with it; use another registrable domain (docs/deploy.md)", c.PortsDomain, base)
	}
	return nil
}

// onPortsHost says whether a request's Host is a forwarded port's.
func (c *Config) onPortsHost(host string) bool {
	if c.PortsDomain == "" {
		return false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.HasSuffix(strings.TrimSuffix(strings.ToLower(host), "."), "."+c.PortsDomain)
}
