package smtpd

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"

	"smessenger/internal/dnsres"
)

// mxAuthTimeout bounds all DNS work for one message.
const mxAuthTimeout = 20 * time.Second

// mxMaxDKIMSignatures bounds verification work per message.
const mxMaxDKIMSignatures = 5

// mxTempDNSError satisfies net.Error with Temporary() true, which is how
// go-msgauth's dkim tells a temporary key lookup failure from a missing key.
type mxTempDNSError struct{ error }

func (mxTempDNSError) Timeout() bool   { return true }
func (mxTempDNSError) Temporary() bool { return true }

// mxAuthResult is what the checks found; reject is set when the From
// domain's DMARC policy is reject and the message failed DMARC.
type mxAuthResult struct {
	header string // "Authentication-Results: ...\r\n"
	reject bool
}

// authenticate runs SPF, DKIM and DMARC over one message. The client IP is
// used for SPF only and appears in no result.
func (m *MX) authenticate(ip net.IP, helo, mailFrom string, raw, hdr []byte) mxAuthResult {
	ctx, cancel := context.WithTimeout(context.Background(), mxAuthTimeout)
	defer cancel()
	res := m.cfg.Resolver
	lookupTXT := func(name string) ([]string, error) {
		txt, err := res.LookupTXT(ctx, name)
		if err != nil && !errors.Is(err, dnsres.ErrNotFound) {
			return nil, mxTempDNSError{err}
		}
		return txt, err
	}

	spf := CheckSPF(ctx, res, ip, mailFrom, helo)
	spfDomain := helo
	if i := strings.LastIndexByte(mailFrom, '@'); i >= 0 {
		spfDomain = mailFrom[i+1:]
	}
	results := []authres.Result{&authres.SPFResult{Value: authres.ResultValue(spf), From: mailFrom, Helo: helo}}

	var dkimPass []string
	var verifs []*dkim.Verification
	var err error
	// Most mail a small MX gets is signed, but checking for the field
	// first spares an unsigned message a second header parse.
	if mxHasField(hdr, "DKIM-Signature") {
		verifs, err = dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
			LookupTXT: lookupTXT, MaxVerifications: mxMaxDKIMSignatures,
		})
	}
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		results = append(results, &authres.DKIMResult{Value: authres.ResultPermError})
	} else if len(verifs) == 0 {
		results = append(results, &authres.DKIMResult{Value: authres.ResultNone})
	}
	for _, v := range verifs {
		var val authres.ResultValue = authres.ResultPass
		switch {
		case v.Err == nil:
			dkimPass = append(dkimPass, v.Domain)
		case dkim.IsTempFail(v.Err):
			val = authres.ResultTempError
		case dkim.IsPermFail(v.Err):
			val = authres.ResultPermError
		default:
			val = authres.ResultFail
		}
		results = append(results, &authres.DKIMResult{Value: val, Domain: v.Domain})
	}

	dres, reject := m.checkDMARC(ctx, hdr, spf, spfDomain, dkimPass)
	results = append(results, dres)
	return mxAuthResult{
		header: "Authentication-Results: " + authres.Format(m.cfg.Hostname, results) + "\r\n",
		reject: reject,
	}
}

// checkDMARC applies RFC 7489 section 6.6: the From domain's policy, with
// identifier alignment of the SPF and DKIM passes.
func (m *MX) checkDMARC(ctx context.Context, hdr []byte, spf SPFResult, spfDomain string, dkimPass []string) (*authres.DMARCResult, bool) {
	from := mxHeaderFromDomain(hdr)
	if from == "" {
		return &authres.DMARCResult{Value: authres.ResultNone}, false
	}
	out := &authres.DMARCResult{From: from}
	rec, policyDomain, err := m.lookupDMARC(ctx, from)
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		out.Value = authres.ResultNone
		return out, false
	case err != nil && errors.Is(err, dnsres.ErrTemporary):
		out.Value = authres.ResultTempError
		return out, false
	case err != nil:
		out.Value = authres.ResultPermError
		return out, false
	}
	aligned := func(d string, mode dmarc.AlignmentMode) bool {
		d = dnsres.Canonical(d)
		if mode == dmarc.AlignmentStrict {
			return d == from
		}
		return mxOrgDomain(d) == mxOrgDomain(from)
	}
	pass := spf == SPFPass && aligned(spfDomain, rec.SPFAlignment)
	for _, d := range dkimPass {
		pass = pass || aligned(d, rec.DKIMAlignment)
	}
	if pass {
		out.Value = authres.ResultPass
		return out, false
	}
	out.Value = authres.ResultFail
	policy := rec.Policy
	if policyDomain != from && rec.SubdomainPolicy != "" {
		policy = rec.SubdomainPolicy
	}
	return out, policy == dmarc.PolicyReject
}

// lookupDMARC finds the record for domain or, failing that, for its
// organizational domain (RFC 7489 section 6.6.3).
func (m *MX) lookupDMARC(ctx context.Context, domain string) (*dmarc.Record, string, error) {
	rec, err := m.dmarcRecord(ctx, domain)
	if errors.Is(err, dmarc.ErrNoPolicy) {
		if org := mxOrgDomain(domain); org != domain {
			rec, err = m.dmarcRecord(ctx, org)
			return rec, org, err
		}
	}
	return rec, domain, err
}

func (m *MX) dmarcRecord(ctx context.Context, domain string) (*dmarc.Record, error) {
	txts, err := m.cfg.Resolver.LookupTXT(ctx, "_dmarc."+domain)
	if errors.Is(err, dnsres.ErrNotFound) {
		return nil, dmarc.ErrNoPolicy
	}
	if err != nil {
		return nil, err
	}
	for _, t := range txts {
		if strings.HasPrefix(t, "v=DMARC1") {
			return dmarc.Parse(t)
		}
	}
	return nil, dmarc.ErrNoPolicy
}

// mxOrgDomain approximates the organizational domain as the last two
// labels. Without a public suffix list this over-aligns under shared
// suffixes like co.uk, which only makes relaxed alignment more lenient.
func mxOrgDomain(d string) string {
	d = dnsres.Canonical(d)
	i := strings.LastIndexByte(d, '.')
	if i <= 0 {
		return d
	}
	if j := strings.LastIndexByte(d[:i], '.'); j >= 0 {
		return d[j+1:]
	}
	return d
}

// mxHeaderFromDomain returns the domain of the single From address, or ""
// when there is none or several (DMARC then does not apply).
func mxHeaderFromDomain(hdr []byte) string {
	v := mxHeaderValue(hdr, "From")
	if v == "" || len(v) > 2048 {
		return ""
	}
	list, err := mail.ParseAddressList(v)
	if err != nil || len(list) != 1 {
		return ""
	}
	_, d, ok := strings.Cut(list[0].Address, "@")
	if !ok {
		return ""
	}
	return dnsres.Canonical(d)
}
