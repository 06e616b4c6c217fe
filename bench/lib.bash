# bench/lib.bash — shell helpers the bench/*.sh harnesses share (sourced,
# not run: scripts/bench.sh runs bench/*.sh only). Loopback only.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# Waits up to 10 s for 127.0.0.1:PORT to accept connections.
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
# field TEXT NAME: the number after " NAME=" in a RESULT line.
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"; }
# ratio A B: A/B with two decimals ("n/a" when B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
# ms MICROSECONDS: milliseconds with two decimals.
ms() { awk -v v="$1" 'BEGIN{printf "%.2f", v/1000}'; }
# cpu_ticks PID: CPU ticks (user + system) the process used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# median of the numbers on stdin (space or newline separated).
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{ if (NR) print a[int((NR+1)/2)]; else print 0 }'; }

# nginx_conf DIR PORT: writes DIR/nginx.conf, 2 workers answering
# `return 202` on 127.0.0.1:PORT (the HTTP reference); start it with
#   nginx -p DIR -c DIR/nginx.conf
nginx_conf() {
  mkdir -p "$1/logs"
  cat > "$1/nginx.conf" <<CONF
worker_processes 2;
error_log $1/logs/error.log warn;
pid $1/nginx.pid;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $1/body;
  server { listen 127.0.0.1:$2; keepalive_requests 1000000;
           location / { return 202; } }
}
CONF
}
