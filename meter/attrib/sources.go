package attrib

import (
	"context"
	"errors"
)

// Sources are the attribution sources of a request; a nil one is not
// asked. New chains them cheapest first: trusted headers, then JWTs, then
// usaged's own tokens.
type Sources struct {
	Headers *HeaderConfig
	JWT     *JWTConfig
	Usaged  *UsagedConfig
}

// ErrNoSource is the error of New for Sources without any.
var ErrNoSource = errors.New("no attribution source")

// New returns the chain of the sources, or the error of the first whose
// configuration is refused.
func New(ctx context.Context, s Sources) (Attributor, error) {
	var chain []Attributor
	if s.Headers != nil {
		h, err := NewHeaders(*s.Headers)
		if err != nil {
			return nil, err
		}
		chain = append(chain, h)
	}
	if s.JWT != nil {
		j, err := NewJWT(ctx, *s.JWT)
		if err != nil {
			return nil, err
		}
		chain = append(chain, j)
	}
	if s.Usaged != nil {
		u, err := NewUsaged(*s.Usaged)
		if err != nil {
			return nil, err
		}
		chain = append(chain, u)
	}
	if len(chain) == 0 {
		return nil, ErrNoSource
	}
	return Chain(chain...), nil
}
