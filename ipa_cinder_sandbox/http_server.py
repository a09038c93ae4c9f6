# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The sandbox's HTTP server: files on loopback, and the nodes' view of it.

``python -m ipa_cinder_sandbox.http_server --port P --directory D`` serves
``D`` (images, ramdisks, Ironic's iPXE scripts) on 127.0.0.1 like
``python -m http.server``, and also answers proxy requests (absolute URLs)
for itself as the VM nodes name it: ``http://<service address>:P/...``
(:mod:`ipa_cinder_sandbox.node_network`). Any other proxied host is
refused with 403: this is not an open proxy.
"""

import argparse
import functools
import http.server
import urllib.parse

from ipa_cinder_sandbox import node_network


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files; takes an absolute URL only when it names this server."""

    # Set by serve(): the host:port forms that name this server.
    own_authorities = frozenset()

    def parse_request(self):
        if not super().parse_request():
            return False
        if self.path.startswith(('http://', 'https://')):
            target = urllib.parse.urlsplit(self.path)
            if (target.scheme != 'http'
                    or target.netloc not in self.own_authorities):
                self.send_error(403, 'not a proxy for %s' % target.netloc)
                return False
            self.path = urllib.parse.urlunsplit(
                ('', '', target.path or '/', target.query, ''))
        return True


def serve(port, directory, bind='127.0.0.1'):
    """Serve ``directory`` on ``bind``:``port`` until interrupted."""
    Handler.own_authorities = frozenset(
        '%s:%d' % (host, port)
        for host in (bind, 'localhost', node_network.SERVICE_ADDRESS))
    handler = functools.partial(Handler, directory=directory)
    with http.server.ThreadingHTTPServer((bind, port), handler) as server:
        server.serve_forever()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bind', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--directory', required=True)
    args = parser.parse_args(argv)
    try:
        serve(args.port, args.directory, args.bind)
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
