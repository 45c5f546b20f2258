package workflow

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// decodeValueCorpus are documents whose decoding is easy to get wrong: escapes,
// surrogates, invalid UTF-8, repeated keys, numbers in every form, nesting, space,
// and documents that are not JSON.
var decodeValueCorpus = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0.5e+10`, `1E400`, `12345678901234567890123`,
	`"plain"`, `"caf\u00e9 \"quoted\" \\ \/ \n\t"`, `"\ud83d\ude00"`, `"\ud800"`, "\"caf\xc3\xa9\"", "\"bad \xff byte\"",
	`{"a":1,"a":2}`, ` { "a" : [ 1 , {"b":null} , "x" ] , "c" : {} } `, `[[[[[]]]]]`,
	`{"n":1.0,"m":-2,"s":"\u0000"}`, "\t[1,\n2]\r\n",
	``, ` `, `{`, `{"a":}`, `[1,]`, `{} {}`, `01`, `"unterminated`, `nul`, `{"a":1}x`,
}

func TestDecodeValueAsDecoder(t *testing.T) {
	for _, doc := range decodeValueCorpus {
		requireDecodesAsDecoder(t, []byte(doc))
	}
}

func requireDecodesAsDecoder(t *testing.T, doc []byte) {
	t.Helper()
	want, wantErr := decodeWithDecoder(doc)
	got, err := decodeValue(doc)
	if wantErr != nil {
		require.Error(t, err, "%q", doc)
		require.Equal(t, wantErr.Error(), err.Error(), "%q", doc)
		return
	}
	require.NoError(t, err, "%q", doc)
	require.Equal(t, want, got, "%q", doc)
}
