package users

import "testing"

func TestStrategies(t *testing.T) {
	cases := map[AuctionConfig]string{
		{Strategy: "auto", AutoBid: true}:      StrategyAuto,
		{Strategy: "increment", AutoBid: true}: StrategyAuto,
		{Strategy: "", AutoBid: true}:          StrategyAuto,
		{Strategy: "sniping", AutoBid: true}:   StrategySniping,
		{Strategy: "manual", AutoBid: true}:    "",
		{Strategy: "auto", AutoBid: false}:     "",
		{Strategy: "bogus", AutoBid: true}:     "",
	}
	for cfg, want := range cases {
		if got := cfg.AutoStrategy(); got != want {
			t.Errorf("%+v: %q, want %q", cfg, got, want)
		}
	}
}
