module unisockets.example/echoclient

go 1.24
