"""deploy/kubernetes agrees with the code and with itself: ports, probes, variable names,
secret keys, labels. No cluster here and no kubectl: a parser test (python3-yaml)."""
import os
import re
import subprocess
import tempfile
import unittest

import yaml

from harness import AUTHD, ROOT, Env

KDIR = os.path.join(ROOT, "deploy", "kubernetes")


def load_all():
    with open(os.path.join(KDIR, "kustomization.yaml")) as f:
        kust = yaml.safe_load(f)
    docs = []
    for res in kust["resources"]:
        with open(os.path.join(KDIR, res)) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    return kust, docs


def known_settings():
    """The PIPE2_AUTH_* variables pipe2-authd itself lists in --help."""
    out = subprocess.run([AUTHD, "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"PIPE2_AUTH_[A-Z_]+", out))


class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kust, cls.docs = load_all()
        cls.by_kind = {}
        for d in cls.docs:
            cls.by_kind.setdefault(d["kind"], []).append(d)
        cls.dep = cls.by_kind["Deployment"][0]
        cls.pod = cls.dep["spec"]["template"]["spec"]
        cls.ctr = cls.pod["containers"][0]
        cls.cm = cls.by_kind["ConfigMap"][0]["data"]
        cls.ports = {p["name"]: p["containerPort"] for p in cls.ctr["ports"]}

    def test_every_kind_the_issue_names_is_there(self):
        for kind in ["Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget", "Ingress", "NetworkPolicy"]:
            self.assertIn(kind, self.by_kind)
        # rpc, forward-auth, http (the Ingress's), metrics
        self.assertEqual(len(self.by_kind["Service"]), 4)
        self.assertEqual(self.dep["spec"]["replicas"], 3)
        names = {g["name"] for g in self.kust["secretGenerator"]}
        self.assertEqual(names, {"pipe2-auth-signing-keys", "pipe2-auth-service-keys",
                                 "pipe2-auth-redis"})

    def test_variables_are_ones_pipe2_authd_knows(self):
        known = known_settings()
        used = set(self.cm) | {e["name"] for e in self.ctr.get("env", [])}
        self.assertTrue(used <= known, used - known)
        for required in ["PIPE2_AUTH_KEYS_DIR", "PIPE2_AUTH_SERVICE_KEYS_FILE",
                         "PIPE2_AUTH_REDIS_URL"]:
            self.assertIn(required, used)
        self.assertEqual(self.ctr["envFrom"][0]["configMapRef"]["name"],
                         self.by_kind["ConfigMap"][0]["metadata"]["name"])

    def test_listen_ports_match_container_ports_services_and_probes(self):
        self.assertEqual(int(self.cm["PIPE2_AUTH_RPC_LISTEN"].rsplit(":", 1)[1]), self.ports["grpc"])
        self.assertEqual(int(self.cm["PIPE2_AUTH_HTTP_LISTEN"].rsplit(":", 1)[1]), self.ports["http"])
        self.assertEqual(int(self.cm["PIPE2_AUTH_METRICS_LISTEN"].rsplit(":", 1)[1]),
                         self.ports["metrics"])
        self.assertEqual(int(self.cm["PIPE2_AUTH_FORWARD_AUTH_LISTEN"].rsplit(":", 1)[1]),
                         self.ports["forward-auth"])
        for svc in self.by_kind["Service"]:
            self.assertEqual(svc["spec"]["selector"],
                             {k: v for k, v in self.dep["spec"]["template"]["metadata"]["labels"]
                              .items() if k in svc["spec"]["selector"]})
            for p in svc["spec"]["ports"]:
                self.assertIn(p["targetPort"], self.ports)
                self.assertEqual(p["port"], self.ports[p["targetPort"]])
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"]:
            self.assertEqual(self.ctr[probe]["grpc"]["port"], self.ports["grpc"])
        self.assertEqual(self.ctr["readinessProbe"]["grpc"]["service"], "")
        self.assertEqual(self.ctr["livenessProbe"]["grpc"]["service"], "liveness")

    def test_mounted_secrets_hold_what_the_settings_point_at(self):
        mounts = {m["name"]: m["mountPath"] for m in self.ctr["volumeMounts"]}
        vols = {v["name"]: v["secret"]["secretName"] for v in self.pod["volumes"]}
        gens = {g["name"]: g for g in self.kust["secretGenerator"]}
        keys_dir = self.cm["PIPE2_AUTH_KEYS_DIR"]
        svc_file = self.cm["PIPE2_AUTH_SERVICE_KEYS_FILE"]
        keys_vol = [n for n, p in mounts.items() if p == keys_dir][0]
        self.assertEqual(vols[keys_vol], "pipe2-auth-signing-keys")
        self.assertTrue(all(f.endswith(".pem") for f in gens["pipe2-auth-signing-keys"]["files"]))
        svc_vol = [n for n, p in mounts.items() if p == os.path.dirname(svc_file)][0]
        self.assertEqual(vols[svc_vol], "pipe2-auth-service-keys")
        self.assertIn(os.path.basename(svc_file),
                      [os.path.basename(f) for f in gens["pipe2-auth-service-keys"]["files"]])
        ref = [e for e in self.ctr["env"] if e["name"] == "PIPE2_AUTH_REDIS_URL"][0]
        self.assertEqual(ref["valueFrom"]["secretKeyRef"]["name"], "pipe2-auth-redis")
        # make-secrets.sh writes exactly the files the generators read, and a usable key
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, P2A_SECRETS_DIR=d)
            subprocess.run([os.path.join(KDIR, "make-secrets.sh")], env=env, check=True,
                           capture_output=True)
            for g in self.kust["secretGenerator"]:
                for f in g.get("files", []) + g.get("envs", []):
                    self.assertTrue(os.path.isfile(os.path.join(d, f[len("secrets/"):])), f)
            with open(os.path.join(d, "redis.env")) as f:
                self.assertTrue(f.read().startswith("PIPE2_AUTH_REDIS_URL=redis://"))

    def test_labels_and_targets_agree(self):
        labels = self.dep["spec"]["template"]["metadata"]["labels"]
        self.assertEqual(self.dep["spec"]["selector"]["matchLabels"], labels)
        hpa = self.by_kind["HorizontalPodAutoscaler"][0]["spec"]
        self.assertEqual(hpa["scaleTargetRef"]["name"], self.dep["metadata"]["name"])
        self.assertGreaterEqual(hpa["minReplicas"], 3)
        self.assertEqual(self.by_kind["PodDisruptionBudget"][0]["spec"]["selector"]["matchLabels"],
                         labels)
        np = self.by_kind["NetworkPolicy"][0]["spec"]
        self.assertEqual(np["podSelector"]["matchLabels"], labels)
        rpc_rule = [r for r in np["ingress"] if r["ports"][0]["port"] == self.ports["grpc"]][0]
        allowed = {f["podSelector"]["matchLabels"]["pipe2.ai/auth-client"] for f in rpc_rule["from"]}
        self.assertEqual(allowed, {"mcp-server", "dashboard"})
        backend = self.by_kind["Ingress"][0]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
        http_svc = [s for s in self.by_kind["Service"]
                    if s["metadata"]["name"] == backend["service"]["name"]][0]
        self.assertEqual(http_svc["spec"]["ports"][0]["targetPort"], "http")  # never the RPC port
        # the facade port: only the ingress controller; /metrics: never behind the Ingress,
        # and only Prometheus
        by_port = {r["ports"][0]["port"]: r for r in np["ingress"]}
        self.assertEqual(set(by_port), {self.ports["grpc"], self.ports["http"], self.ports["metrics"],
                                        self.ports["forward-auth"]})
        fwd_from = by_port[self.ports["forward-auth"]]["from"]  # never the public
        self.assertEqual(
            sorted(str(f["podSelector"]["matchLabels"]) for f in fwd_from),
            sorted([str({"app.kubernetes.io/name": "ingress-nginx"}),
                    str({"pipe2.ai/auth-client": "mcp-server"})]))
        http_from = by_port[self.ports["http"]]["from"]
        self.assertEqual([f["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for f in http_from],
                         ["ingress-nginx"])
        self.assertTrue(all("namespaceSelector" in f and f["namespaceSelector"]["matchLabels"]
                            for f in http_from))
        # out: DNS, Redis, and https only to public addresses (documents a client names)
        self.assertIn("Egress", np["policyTypes"])
        out = {p["port"] for r in np["egress"] for p in r["ports"]}
        self.assertEqual(out, {53, 6379, 26379, 443})
        https = [r for r in np["egress"] if r["ports"][0]["port"] == 443][0]["to"][0]["ipBlock"]
        self.assertEqual(https["cidr"], "0.0.0.0/0")
        for private in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]:
            self.assertIn(private, https["except"])
        metrics_from = by_port[self.ports["metrics"]]["from"]
        self.assertEqual([f["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                          for f in metrics_from], ["prometheus"])
        metrics_svc = [s for s in self.by_kind["Service"]
                       if s["spec"]["ports"][0]["targetPort"] == "metrics"][0]
        self.assertEqual(metrics_svc["metadata"]["annotations"]["prometheus.io/port"],
                         str(self.ports["metrics"]))
        self.assertNotEqual(backend["service"]["name"], metrics_svc["metadata"]["name"])
        anti = self.pod["affinity"]["podAntiAffinity"]
        term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
        self.assertEqual(term["topologyKey"], "kubernetes.io/hostname")
        self.assertEqual(term["labelSelector"]["matchLabels"], labels)

    def test_the_mcp_ingress_example_asks_forward_auth(self):
        with open(os.path.join(KDIR, "mcp-ingress.example.yaml")) as f:
            docs = {d["kind"]: d for d in yaml.safe_load_all(f)}
        ing = docs["Ingress"]
        a = ing["metadata"]["annotations"]
        # forward-auth judges the host ingress-nginx routed on, set over any the client sent
        cm = docs["ConfigMap"]
        self.assertEqual(a["nginx.ingress.kubernetes.io/auth-proxy-set-headers"],
                         f"{cm['metadata']['namespace']}/{cm['metadata']['name']}")
        self.assertEqual(cm["data"], {"X-Forwarded-Host": "$host"})
        svc = [s for s in self.by_kind["Service"] if s["metadata"]["name"] ==
               "pipe2-auth-forward-auth"][0]
        self.assertEqual(a["nginx.ingress.kubernetes.io/auth-url"],
                         f"http://pipe2-auth-forward-auth.{self.kust['namespace']}.svc.cluster.local:"
                         f"{svc['spec']['ports'][0]['port']}/forward-auth")
        self.assertEqual([h.strip() for h in
                          a["nginx.ingress.kubernetes.io/auth-response-headers"].split(",")],
                         ["X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scope", "X-Auth-Token-Kind",
                          "X-Auth-Token-Id", "X-Auth-Expires", "X-Auth-Actor"])
        # one origin: the MCP path and the facade's Ingress on the issuer's host
        host = self.cm["PIPE2_AUTH_ISSUER"].split("://")[1]
        self.assertEqual(ing["spec"]["rules"][0]["host"], host)
        self.assertEqual(self.by_kind["Ingress"][0]["spec"]["rules"][0]["host"], host)
        self.assertEqual(self.cm["PIPE2_AUTH_RESOURCE"], f"https://{host}/mcp")

    def test_security_context_and_shutdown_timing(self):
        sc = self.ctr["securityContext"]
        self.assertTrue(self.pod["securityContext"]["runAsNonRoot"])
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertIn("limits", self.ctr["resources"])
        self.assertIn("requests", self.ctr["resources"])
        pre_stop = int(self.ctr["lifecycle"]["preStop"]["exec"]["command"][-1])
        grace = int(self.cm["PIPE2_AUTH_SHUTDOWN_GRACE"])
        self.assertGreater(self.pod["terminationGracePeriodSeconds"], pre_stop + grace)
        self.assertLess(int(self.cm["PIPE2_AUTH_REVOCATION_STALENESS"]), 30)

    def test_pipe2_authd_runs_with_the_configmap_and_a_secret_volume(self):
        """The ConfigMap's settings, and keys laid out the way a Secret volume lays them out
        (files are symlinks through ..data into a timestamped folder)."""
        env = Env()
        try:
            vol = os.path.join(env.dir, "secret-volume")
            stamp = os.path.join(vol, "..2026_11_26_04_00_00.000000001")
            os.makedirs(stamp)
            os.rename(env.key_path, os.path.join(stamp, "signing-key.pem"))
            os.symlink(os.path.basename(stamp), os.path.join(vol, "..data"))
            os.symlink("..data/signing-key.pem", os.path.join(vol, "signing-key.pem"))
            env.keys_dir = vol
            extra = {k: v for k, v in self.cm.items()
                     if k not in ("PIPE2_AUTH_RPC_LISTEN", "PIPE2_AUTH_HTTP_LISTEN",
                                  "PIPE2_AUTH_KEYS_DIR", "PIPE2_AUTH_SERVICE_KEYS_FILE")}
            authd = env.authd(extra)
            admin = authd.client(env.admin_key)
            try:
                issued = admin.issue("kate", "k8s")
                r = admin.introspect(issued.token, resource=self.cm["PIPE2_AUTH_RESOURCE"])
                self.assertTrue(r.active)
                self.assertIn('"kid":"signing-key"', __import__("base64").urlsafe_b64decode(
                    issued.token.split(".")[0] + "==").decode().replace(" ", ""))
            finally:
                admin.close()
        finally:
            env.close()


if __name__ == "__main__":
    unittest.main()
