package module

import (
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// reloadableCore is a zapcore.Core that writes through whichever core the
// newest config installed. The feeds and connections outlive a config
// reload; their logger must follow the new config's logging rather than
// keep writing through the first config's.
type reloadableCore struct {
	current *atomic.Pointer[zapcore.Core]
	fields  []zapcore.Field // added with With, replayed on the live core
}

func newReloadableLogger(initial *zap.Logger) (*zap.Logger, func(*zap.Logger)) {
	ptr := new(atomic.Pointer[zapcore.Core])
	set := func(l *zap.Logger) {
		core := l.Core()
		ptr.Store(&core)
	}
	set(initial)
	return zap.New(reloadableCore{current: ptr}), set
}

func (c reloadableCore) live() zapcore.Core {
	core := *c.current.Load()
	if len(c.fields) > 0 {
		core = core.With(c.fields)
	}
	return core
}

func (c reloadableCore) Enabled(l zapcore.Level) bool { return (*c.current.Load()).Enabled(l) }

func (c reloadableCore) With(fields []zapcore.Field) zapcore.Core {
	all := make([]zapcore.Field, 0, len(c.fields)+len(fields))
	all = append(append(all, c.fields...), fields...)
	return reloadableCore{current: c.current, fields: all}
}

func (c reloadableCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	// Check against the live core so its level and sampling apply, but
	// register this core, so Write replays the fields added with With.
	if c.live().Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c reloadableCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.live().Write(e, fields)
}

func (c reloadableCore) Sync() error { return (*c.current.Load()).Sync() }
