package remote_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/remote"
)

// A node serves its manager; another node drives it. In real use each
// runs on its own machine with its own certificate (see examples/cluster).
func ExampleNode_Manager() {
	var tlsConfig *tls.Config // this node's certificate and the CA of its peers
	node, err := remote.NewNode(remote.Config{Address: "127.0.0.1:7600", TLS: tlsConfig})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	c := node.Manager("127.0.0.1:7601", remote.OwnedByCaller())
	ctx := context.Background()
	if err := c.Supervise(ctx, "web", resman.ProcessSpec{Command: []string{"sleep", "60"}}); err != nil {
		log.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range st.Processes {
		fmt.Println(p.Key, p.PID, p.State)
	}
	if err := c.StopProcess(ctx, "web"); err != nil {
		log.Fatal(err)
	}
}

// A node that lets peers drive its manager.
func ExampleNode_Serve() {
	node, err := remote.NewNode(remote.Config{}) // loopback, any port, no TLS
	if err != nil {
		log.Fatal(err)
	}
	m, err := resman.New(resman.WithActorSystem(node.System()))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()    // second: the manager, and what it tracks
	defer node.Close() // first: no more peers
	if err := node.Serve(m); err != nil {
		log.Fatal(err)
	}
	fmt.Println("serving on", node.Address())
}
