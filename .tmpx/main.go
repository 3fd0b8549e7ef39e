package main

import (
	"context"
	"fmt"
	"os"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
)

func main() {
	ctx := context.Background()
	db, err := warehouse.Open(ctx)
	if err != nil {
		panic(err)
	}
	for _, q := range os.Args[1:] {
		rows, err := db.Strings(ctx, q)
		fmt.Println(q, "=>", rows, err)
	}
}
