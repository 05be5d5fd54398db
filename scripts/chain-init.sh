#!/usr/bin/env bash
# Creates a single-validator Highway dev network (1 s blocks, dev escrow
# params, funded dev accounts) in HOME_DIR. `make chain` runs it once and
# then starts the node. Keys use the "test" keyring backend: dev only.
set -euo pipefail
BIN=${HIGHWAYD:-bin/highwayd}
HOME_DIR=${1:-.highway/chain}
CHAIN_ID=${CHAIN_ID:-highway-dev}
KR=(--keyring-backend test --home "$HOME_DIR")

if [ -f "$HOME_DIR/config/genesis.json" ]; then
  echo "chain already initialised in $HOME_DIR (delete it to start afresh)"
  exit 0
fi
mkdir -p "$HOME_DIR"
"$BIN" init highway-dev --chain-id "$CHAIN_ID" --default-denom uhwy --home "$HOME_DIR" >/dev/null 2>&1
for k in validator buyer provider arbiter; do
  "$BIN" keys add "$k" "${KR[@]}" --output json > "$HOME_DIR/$k.key.json" 2>&1
  chmod 600 "$HOME_DIR/$k.key.json"
done
addr() { "$BIN" keys show "$1" -a "${KR[@]}"; }
# 1 000 000 HWY to the validator and the buyer; 1 000 HWY to the others for fees.
"$BIN" genesis add-genesis-account "$(addr validator)" 1000000000000uhwy --home "$HOME_DIR"
"$BIN" genesis add-genesis-account "$(addr buyer)" 1000000000000uhwy --home "$HOME_DIR"
"$BIN" genesis add-genesis-account "$(addr provider)" 1000000000uhwy --home "$HOME_DIR"
"$BIN" genesis add-genesis-account "$(addr arbiter)" 1000000000uhwy --home "$HOME_DIR"
"$BIN" genesis set-escrow "$(addr arbiter)" --dev --home "$HOME_DIR"
"$BIN" genesis gentx validator 100000000000uhwy --chain-id "$CHAIN_ID" "${KR[@]}" >/dev/null 2>&1
"$BIN" genesis collect-gentxs --home "$HOME_DIR" >/dev/null 2>&1
"$BIN" genesis validate --home "$HOME_DIR"
# 1 s blocks: escrow epochs count blocks, and a second keeps the dev loop snappy.
sed -i -E 's/^timeout_commit = .*/timeout_commit = "1s"/' "$HOME_DIR/config/config.toml"
# A dev chain talks to this machine only: P2P on loopback (it has no
# peers), and no pprof listener.
sed -i -E 's#^laddr = "tcp://0\.0\.0\.0:26656"#laddr = "tcp://127.0.0.1:26656"#' "$HOME_DIR/config/config.toml"
sed -i -E 's/^pprof_laddr = .*/pprof_laddr = ""/' "$HOME_DIR/config/config.toml"
echo "chain $CHAIN_ID initialised in $HOME_DIR"
for k in buyer provider arbiter; do echo "  $k: $(addr "$k")"; done
