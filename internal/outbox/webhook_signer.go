package outbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ironflow/ironflow/internal/engine"
)

// ErrInvalidSecret: a signing secret is not "whsec_" followed by standard base64.
var ErrInvalidSecret = errors.New("invalid webhook secret")

// Signer signs webhook deliveries as the Standard Webhooks specification says: the
// signature of a message is v1,<base64 HMAC-SHA256 of "id.timestamp.body"> keyed with
// the decoded secret, one per active secret, separated by spaces.
type Signer struct {
	keys [][]byte
}

// NewSigner returns a Signer for the given secrets (newest first). Errors:
// ErrInvalidSecret, or no secret at all.
func NewSigner(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: no secret", ErrInvalidSecret)
	}
	s := &Signer{keys: make([][]byte, 0, len(secrets))}
	for _, sec := range secrets {
		k, err := engine.DecodeWebhookSecret(sec)
		if err == nil && len(k) == 0 {
			err = errors.New("empty key")
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidSecret, err)
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Sign returns the webhook-signature header value for the message id sent at ts with
// body.
func (s *Signer) Sign(id string, ts time.Time, body []byte) string {
	content := make([]byte, 0, len(id)+len(body)+24)
	content = append(content, id...)
	content = append(content, '.')
	content = strconv.AppendInt(content, ts.Unix(), 10)
	content = append(content, '.')
	content = append(content, body...)
	sigs := make([]string, 0, len(s.keys))
	for _, k := range s.keys {
		mac := hmac.New(sha256.New, k)
		mac.Write(content)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " ")
}
