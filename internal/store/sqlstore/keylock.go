package sqlstore

import "sync"

// KeyLocks are in-process locks on instance keys, for a backend whose database has no
// lock an instance's deciders could wait on (SQLite decides outside its single writer):
// inputs to one instance then take turns, and inputs to others never wait.
type KeyLocks struct {
	mu    sync.Mutex
	locks map[Key]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// Lock locks keys, which must be sorted and distinct (so concurrent batches never
// deadlock), and returns the function that unlocks them.
func (l *KeyLocks) Lock(keys []Key) (unlock func()) {
	held := make([]*keyLock, len(keys))
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[Key]*keyLock{}
	}
	for i, k := range keys {
		kl := l.locks[k]
		if kl == nil {
			kl = &keyLock{}
			l.locks[k] = kl
		}
		kl.refs++
		held[i] = kl
	}
	l.mu.Unlock()
	for _, kl := range held {
		kl.mu.Lock()
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, kl := range held {
			kl.mu.Unlock()
			if kl.refs--; kl.refs == 0 {
				delete(l.locks, keys[i])
			}
		}
	}
}
