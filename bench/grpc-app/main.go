// The gRPC upstream of bench/grpc.ts: grpc-go, one raw-bytes handler for every method. A call
// answers its request message as received (for /verso.bench.Echo/Unary, bench/echo.proto, a
// request Msg is a valid response Msg), then grpc-status 0. grpc-go because it costs ~18 µs of
// CPU per unary call here, against ~70-80 µs for Go's net/http h2c or node:http2 (the demo
// app): the app shares a core with the load generator and must not be what saturates.
//
//	go build -o grpc-app ./bench/grpc-app && GOMAXPROCS=1 ./grpc-app 127.0.0.1:9090
package main

import (
	"log"
	"net"
	"os"

	"google.golang.org/grpc"
)

type frame struct{ bytes []byte }

// codec passes message bytes through: no protobuf decoding, any request is answered.
type codec struct{}

func (codec) Marshal(v any) ([]byte, error) { return v.(*frame).bytes, nil }
func (codec) Unmarshal(data []byte, v any) error {
	v.(*frame).bytes = append([]byte(nil), data...)
	return nil
}
func (codec) Name() string { return "proto" }

func echo(_ any, stream grpc.ServerStream) error {
	var m frame
	if err := stream.RecvMsg(&m); err != nil {
		return err
	}
	return stream.SendMsg(&m)
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: grpc-app HOST:PORT")
	}
	listener, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	server := grpc.NewServer(grpc.ForceServerCodec(codec{}), grpc.UnknownServiceHandler(echo))
	log.Fatal(server.Serve(listener))
}
