package main

import "time"

// clusterNodes is how many gateway processes a cluster scenario runs.
const clusterNodes = 3

// clusterLease is the nodes' ownership lease in the cluster scenarios
// (the default, 3s): a dead owner's products move within about it.
const clusterLease = 3 * time.Second

// feedHistory is the gateways' `history` (the default): a resume that
// missed at most this many changes of a product comes back recovered.
const feedHistory = 64

// clusterSpecs are issue 15's cluster rows, each c1k's load (1,000 clients,
// 10 products, 10 events/s) served by three gateway processes sharing one
// NATS process (bin/nellis-nats), the clients spread evenly over them:
// cluster3 as it runs, cluster-failover with the gateway owning the most
// products SIGKILLed markAfter into the run.
func clusterSpecs(quick bool) []loadSpec {
	window := 20 * time.Second
	if quick {
		window = 5 * time.Second
	}
	const warm, drain = 2 * time.Second, 2 * time.Second
	return []loadSpec{
		{key: "cluster3", name: "1,000 clients × 10/s, 3 nodes", clients: 1_000, products: productCount, rate: 10,
			warmup: warm, window: window, drain: drain, nodes: clusterNodes},
		{key: "cluster-failover", name: "1,000 clients × 10/s, 3 nodes, busiest owner killed", clients: 1_000, products: productCount, rate: 10,
			// The window holds the kill and a lease and a half after it.
			warmup: warm, window: 4*time.Second + 3*clusterLease, drain: drain, markAfter: 4 * time.Second,
			nodes: clusterNodes, killOwner: true,
			fault: func(*simulator) error { return nil }}, // the kill is the cluster server's (inject)
	}
}

// withCluster puts the cluster scenarios right after c1k, whose load they
// carry, so the two meet the machine in about the same state.
func withCluster(specs []loadSpec, quick bool) []loadSpec {
	var out []loadSpec
	for _, s := range specs {
		out = append(out, s)
		if s.key == "c1k" {
			out = append(out, clusterSpecs(quick)...)
		}
	}
	return out
}
