package tied

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	runParent()
	goleak.VerifyTestMain(m)
}
