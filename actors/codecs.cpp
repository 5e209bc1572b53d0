#include "actors/codecs.h"

#include "actors/account/account.h"
#include "actors/clienttoken/client_token.h"
#include "actors/compute/zone.h"
#include "actors/iam/group.h"
#include "actors/iam/user.h"
#include "actors/image/image.h"
#include "actors/instance/instance.h"
#include "actors/keypair/keypair.h"
#include "actors/network/network.h"
#include "actors/network/segment.h"
#include "actors/securitygroup/security_group.h"
#include "actors/storage/snapshot.h"
#include "actors/storage/volume.h"

namespace kumo::actors {
namespace {

template <class A>
persistence::status decode_as(const persistence::event_record& r) {
  typename A::event ev;
  return A::decode(r, ev);
}

}  // namespace

persistence::status decode_any(const persistence::event_record& r) {
  auto kind = r.stream.substr(0, r.stream.find('/'));
  if (kind == account::aggregate::kind) return decode_as<account::aggregate>(r);
  if (kind == keypair::aggregate::kind) return decode_as<keypair::aggregate>(r);
  if (kind == security_group::aggregate::kind) return decode_as<security_group::aggregate>(r);
  if (kind == image::aggregate::kind) return decode_as<image::aggregate>(r);
  if (kind == instance::aggregate::kind) return decode_as<instance::aggregate>(r);
  if (kind == zone::aggregate::kind) return decode_as<zone::aggregate>(r);
  if (kind == client_token::aggregate::kind) return decode_as<client_token::aggregate>(r);
  if (kind == volume::aggregate::kind) return decode_as<volume::aggregate>(r);
  if (kind == snapshot::aggregate::kind) return decode_as<snapshot::aggregate>(r);
  if (kind == iam::user_aggregate::kind) return decode_as<iam::user_aggregate>(r);
  if (kind == iam::group_aggregate::kind) return decode_as<iam::group_aggregate>(r);
  if (kind == network::aggregate::kind) return decode_as<network::aggregate>(r);
  if (kind == segment::aggregate::kind) return decode_as<segment::aggregate>(r);
  return persistence::status::error(persistence::status_code::corrupt,
                                    "no aggregate owns streams of kind '" + kind + "'");
}

}  // namespace kumo::actors
