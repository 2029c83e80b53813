#!/bin/bash
# serve.sh PREFIX PORT: set up nginx under PREFIX (its config and page from
# beside this script) on PORT, fetch its index page once, stop it. Exits 0 only when the page came back intact, so a run
# confined to too few capabilities shows in the exit status.
set -u
prefix=$1 port=$2
# A fresh temporary tree each run: nginx chowns it to its worker user (mode
# 0700, which root without CAP_DAC_OVERRIDE could not remove), so every run
# makes the same checks.
here=$(dirname "$(readlink -f "$0")")
tmp=$(mktemp -d -p "$prefix" tmp.XXXXXX) && cp -r "$here/www" "$prefix/" || exit 2
sed -e "s/@PORT@/$port/" -e "s|@TMP@|$tmp|" "$here/nginx.conf" >"$prefix/nginx.conf" || exit 2
fetch() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && cat <&3" 2>/dev/null
}
nginx -p "$prefix" -c nginx.conf &
ngx=$!
ok=1
for _ in $(seq 100); do
  reply=$(fetch)
  rc=$?
  if ((rc == 0)); then
    [[ "$reply" == *"$(cat "$prefix/www/index.html")"* ]] && ok=0
    break
  fi
  ((rc == 124)) && break # connected but nobody answers: no worker
  kill -0 $ngx 2>/dev/null || break
  sleep 0.1
done
kill -QUIT $ngx 2>/dev/null
wait $ngx
exit $ok
