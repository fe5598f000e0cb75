# Role: a PyScaler host (web, beat and/or workers). Parameters come from Hiera
# (pyscaler::source_dir, pyscaler::secret_key, pyscaler::roles, ...: see
# modules/pyscaler/manifests/init.pp). Apply on the host with
#   puppet apply --modulepath=/opt/pyscaler/app/puppet/modules \
#     /opt/pyscaler/app/puppet/manifests/pyscaler_host.pp
# Give the 'beat' role to exactly one host of the installation.
include pyscaler
