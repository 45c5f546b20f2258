package postgres

import (
	"sync"

	"github.com/ironflow/ironflow/internal/store"
)

// defCacheBytes bounds the bodies a definitionCache holds; past it the cache starts
// empty again.
const defCacheBytes = 32 << 20

// defKey names one version of a workflow type's definition.
type defKey struct {
	typ     string
	version int
}

// definitionCache keeps the definitions the store has read. A definition version is
// never changed or deleted once written, so a cached one is never stale: Load reads
// only which version each decision needs (the latest of a type is a look-up of the
// primary key) and reads a body only the first time (decision 0030).
type definitionCache struct {
	mu    sync.Mutex
	defs  map[defKey]store.Definition
	bytes int
}

func (c *definitionCache) get(k defKey) (store.Definition, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.defs[k]
	return d, ok
}

func (c *definitionCache) put(d store.Definition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := defKey{d.Type, d.Version}
	if _, ok := c.defs[k]; ok {
		return
	}
	if c.defs == nil || c.bytes+len(d.Body) > defCacheBytes {
		c.defs, c.bytes = map[defKey]store.Definition{}, 0
	}
	c.defs[k] = d
	c.bytes += len(d.Body)
}
