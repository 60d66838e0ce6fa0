package callback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// SignatureHeader carries a callback's signature: "t=UNIX,v1=HEX", HEX
// being HMAC-SHA256(secret, "UNIX." + body) with the owner's callback
// secret as the key. The time is signed with the body so that a receiver
// can refuse a delivery replayed later (client.VerifyCallback).
const SignatureHeader = "Grappe-Signature"

// Sign returns the SignatureHeader value of body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}
