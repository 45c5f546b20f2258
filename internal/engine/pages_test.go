package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/engine"
)

// TestDefinitionPagesAreBounded: a page of definitions ends once it holds 4 MiB of
// them, whatever the limit asked for (the probe read 150 versions with a megabyte of
// description each as one answer of 143 MiB), and the pages together still list every
// version once, in order; the latest versions of many large types page the same way.
func TestDefinitionPagesAreBounded(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, be.open)
			ctx := context.Background()
			const versions = 15
			description := strings.Repeat("d", 700_000)
			for i := range versions {
				body := fmt.Sprintf(`{"description":"%d %s","initial_state":"s","inputs":{"go":{}},"states":{"s":{"on":{"go":{"to":"s"}}}}}`, i, description)
				_, _, err := b.eng.PutDefinition(ctx, "big", []byte(body))
				require.NoError(t, err)
				_, _, err = b.eng.PutDefinition(ctx, fmt.Sprintf("big_%02d", i), []byte(body))
				require.NoError(t, err)
			}

			walk := func(list func(cursor string) (engine.Page[engine.DefinitionView], error)) (got []string, pages int) {
				cursor := ""
				for {
					page, err := list(cursor)
					require.NoError(t, err)
					pages++
					size := 0
					for _, d := range page.Items {
						size += len(d.Definition)
						got = append(got, fmt.Sprintf("%s/%d", d.Type, d.Version))
					}
					require.NotEmpty(t, page.Items)
					require.Less(t, size-len(page.Items[len(page.Items)-1].Definition), 4<<20, "a page ends once it holds 4 MiB")
					if page.NextCursor == "" {
						return got, pages
					}
					cursor = page.NextCursor
				}
			}
			got, pages := walk(func(c string) (engine.Page[engine.DefinitionView], error) {
				return b.eng.ListDefinitionVersions(ctx, "big", c, engine.MaxPageSize)
			})
			var want []string
			for i := range versions {
				want = append(want, fmt.Sprintf("big/%d", i+1))
			}
			require.Equal(t, want, got)
			require.Equal(t, 3, pages)

			got, _ = walk(func(c string) (engine.Page[engine.DefinitionView], error) {
				return b.eng.ListDefinitions(ctx, c, engine.MaxPageSize)
			})
			require.Len(t, got, versions+2) // big, big_00 … big_14, order
			require.Equal(t, "big/15", got[0])
		})
	}
}
