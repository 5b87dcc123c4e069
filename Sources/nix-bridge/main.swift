print("nix-bridge")
