package broker

import "github.com/twmb/franz-go/pkg/kerr"

// errSlots points at the ErrorCode fields of the response partitions a
// request hands on to a coordinator, in the order the coordinator
// answers them. The response slices must not be reallocated afterwards.
type errSlots []*int16

// setAll gives every slot err.
func (s errSlots) setAll(err *kerr.Error) {
	for _, c := range s {
		*c = err.Code
	}
}

// setEach gives slot k errs[k], where it is not nil.
func (s errSlots) setEach(errs []*kerr.Error) {
	for k, e := range errs {
		if e != nil {
			*s[k] = e.Code
		}
	}
}

// fill sets the slots from a per-topic, per-partition result, which
// lists the slots' partitions in order.
func (s errSlots) fill(topics [][]*kerr.Error) {
	for _, errs := range topics {
		s.setEach(errs)
		s = s[len(errs):]
	}
}
