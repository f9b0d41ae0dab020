"""Static Chinese word data the sandbox generator draws names, addresses and record texts from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class District:
    """A county-level division of the seeds' regions; every subject and person lives in one."""

    code: str  # GB/T 2260
    city_code: str  # the prefecture's GB/T 2260 code, used by city-registered subjects
    province: str
    area: str  # courts' areaName
    city: str  # prefecture
    county: str
    short: str  # used in branch names (榆阳分公司) and document numbers
    gov: str  # prefix of local government bodies, e.g. 榆林市榆阳区
    reg_org: str  # the market regulation office registering subjects here
    city_reg_org: str  # the prefecture's market regulation bureau
    court: str  # basic people's court
    city_court: str  # intermediate people's court
    city_court_abbr: str  # court code of the intermediate court in case numbers
    arbitration: str
    tax_office: str  # inspection bureau that decides major tax violation cases
    water_office: str
    ma_char: str  # third character of post-2015 organisation code bodies in this province
    streets: tuple[str, ...]
    towns: tuple[str, ...]

    @property
    def court_abbr(self) -> str:
        """Court code in case numbers, e.g. 陕0802; used for basic-court case numbers."""
        return _PROVINCE_ABBR[self.province] + self.code[2:6]

    @property
    def address_prefix(self) -> str:
        """Province, prefecture and county as an address starts; used for every 住所."""
        return f"{self.province}{self.city}{self.county}"


def _words(text: str) -> tuple[str, ...]:
    """Space-separated word lists, the compact way to write the data below."""
    return tuple(text.split())


_PROVINCE_ABBR = {"陕西省": "陕", "黑龙江省": "黑", "甘肃省": "甘", "河南省": "豫", "四川省": "川"}


def _yulin(code: str, county: str, short: str, reg_org: str, streets: str, towns: str) -> District:
    """A district of 榆林市 (陕西省); its offices are named irregularly, so reg_org is given."""
    return District(
        code=code,
        city_code="610800",
        province="陕西省",
        area="陕西",
        city="榆林市",
        county=county,
        short=short,
        gov=f"榆林市{county}" if county.endswith("区") else county,
        reg_org=reg_org,
        city_reg_org="榆林市市场监督管理局",
        court=f"榆林市{county}人民法院" if county.endswith("区") else f"{county}人民法院",
        city_court="榆林市中级人民法院",
        city_court_abbr="陕08",
        arbitration="榆林仲裁委员会",
        tax_office="国家税务总局榆林市税务局稽查局",
        water_office="榆林市水利局",
        ma_char="7",
        streets=_words(streets),
        towns=_words(towns),
    )


def _harbin(code: str, county: str, streets: str, towns: str) -> District:
    """A district of 哈尔滨市 (黑龙江省), registered by a 分局 of the city bureau."""
    short = county.removesuffix("区")
    return District(
        code=code,
        city_code="230100",
        province="黑龙江省",
        area="黑龙江",
        city="哈尔滨市",
        county=county,
        short=short,
        gov=f"哈尔滨市{county}",
        reg_org=f"哈尔滨市市场监督管理局{short}分局",
        city_reg_org="哈尔滨市市场监督管理局",
        court=f"哈尔滨市{county}人民法院",
        city_court="哈尔滨市中级人民法院",
        city_court_abbr="黑01",
        arbitration="哈尔滨仲裁委员会",
        tax_office="国家税务总局哈尔滨市税务局第一稽查局",
        water_office="哈尔滨市水务局",
        ma_char="1",
        streets=_words(streets),
        towns=_words(towns),
    )


def _bazhong(code: str, county: str, streets: str, towns: str) -> District:
    """A district or county of 巴中市 (四川省)."""
    in_city = county.endswith("区")
    return District(
        code=code,
        city_code="511900",
        province="四川省",
        area="四川",
        city="巴中市",
        county=county,
        short=county[:2],
        gov=f"巴中市{county}" if in_city else county,
        reg_org=f"巴中市{county}市场监督管理局" if in_city else f"{county}市场监督管理局",
        city_reg_org="巴中市市场监督管理局",
        court=f"巴中市{county}人民法院" if in_city else f"{county}人民法院",
        city_court="巴中市中级人民法院",
        city_court_abbr="川19",
        arbitration="巴中仲裁委员会",
        tax_office="国家税务总局巴中市税务局稽查局",
        water_office="巴中市水利局",
        ma_char="6",
        streets=_words(streets),
        towns=_words(towns),
    )


_QINGSHUI = District(
    code="620521",
    city_code="620500",
    province="甘肃省",
    area="甘肃",
    city="天水市",
    county="清水县",
    short="清水",
    gov="清水县",
    reg_org="清水县市场监督管理局",
    city_reg_org="天水市市场监督管理局",
    court="清水县人民法院",
    city_court="天水市中级人民法院",
    city_court_abbr="甘05",
    arbitration="天水仲裁委员会",
    tax_office="国家税务总局天水市税务局稽查局",
    water_office="清水县水务局",
    ma_char="7",
    streets=("永清镇轩辕大道", "永清镇东大街", "永清镇西关路", "永清镇南河路", "红堡镇红堡街"),
    towns=_words(
        "永清镇 红堡镇 白驼镇 金集镇 秦亭镇 山门镇 白沙镇 王河镇 郭川镇 黄门镇 松树镇 远门镇 "
        "土门镇 草川铺镇 陇东镇 新城乡 丰望乡 贾川乡"
    ),
)

_WUGANG = District(
    code="410481",
    city_code="410400",
    province="河南省",
    area="河南",
    city="平顶山市",
    county="舞钢市",
    short="舞钢",
    gov="舞钢市",
    reg_org="舞钢市市场监督管理局",
    city_reg_org="平顶山市市场监督管理局",
    court="舞钢市人民法院",
    city_court="平顶山市中级人民法院",
    city_court_abbr="豫04",
    arbitration="平顶山仲裁委员会",
    tax_office="国家税务总局平顶山市税务局稽查局",
    water_office="舞钢市水利局",
    ma_char="4",
    streets=(
        "垭口街道湖滨大道",
        "寺坡街道建设路",
        "院岭街道钢城路",
        "矿建街道龙山路",
        "朱兰街道朱兰大道",
    ),
    towns=("尚店镇", "八台镇", "尹集镇", "枣林镇", "武功乡", "杨庄乡", "庙街乡"),
)

# (district, weight): subjects and persons are drawn in proportion to the weights.
_WEIGHTED = (
    (
        _yulin(
            "610802",
            "榆阳区",
            "榆阳",
            "榆林市市场监督管理局榆阳分局",
            "长城南路 人民西路 新建南路 肤施路 榆溪大道 沙河路 建业大道 金沙路 航宇路 明珠大道 "
            "广济路",
            "鱼河镇 镇川镇 麻黄梁镇 牛家梁镇 金鸡滩镇 马合镇 巴拉素镇 鱼河峁镇 青云镇 古塔镇 "
            "大河塔镇 小纪汗镇 芹河镇 孟家湾乡 小壕兔乡 岔河则乡 补浪河乡 红石桥乡",
        ),
        24,
    ),
    (
        _yulin(
            "610803",
            "横山区",
            "横山",
            "榆林市横山区市场监督管理局",
            "怀远大街 新城路 文化路 南大街 东城路",
            "石湾镇 高镇 武镇 党岔镇 响水镇 波罗镇 殿市镇 塔湾镇 赵石畔镇 魏家楼镇 韩岔镇",
        ),
        5,
    ),
    (
        _yulin(
            "610881",
            "神木市",
            "神木",
            "神木市市场监督管理局",
            "麟州街 东兴街 北大街 铧山路 滨河大道 神府路",
            "高家堡镇 店塔镇 孙家岔镇 大柳塔镇 锦界镇 尔林兔镇 中鸡镇 贺家川镇",
        ),
        8,
    ),
    (
        _yulin(
            "610824",
            "靖边县",
            "靖边",
            "靖边县市场监督管理局",
            "长城路 统万路 河东路 新城路",
            "东坑镇 青阳岔镇 宁条梁镇 杨桥畔镇 天赐湾镇 龙洲镇 海则滩镇",
        ),
        4,
    ),
    (
        _harbin(
            "230102",
            "道里区",
            "中央大街 友谊路 经纬街 尚志大街 新阳路 地段街 安丰街 西十二道街",
            "新农镇 太平镇 榆树镇",
        ),
        9,
    ),
    (
        _harbin(
            "230103",
            "南岗区",
            "红军街 西大直街 中山路 学府路 和兴路 果戈里大街 黄河路 长江路 宣化街",
            "王岗镇 红旗满族乡",
        ),
        10,
    ),
    (
        _harbin(
            "230104",
            "道外区",
            "靖宇街 南勋街 景阳街 北十八道街 太古街 承德街",
            "民主镇 巨源镇 团结镇",
        ),
        5,
    ),
    (_harbin("230109", "松北区", "世茂大道 创新一路 中源大道 松北大道", "对青山镇 万宝镇"), 4),
    (
        _harbin(
            "230110", "香坊区", "香坊大街 公滨路 哈平路 三合路 红旗大街 珠江路", "幸福镇 成高子镇"
        ),
        6,
    ),
    (_QINGSHUI, 8),
    (_WUGANG, 10),
    (
        _bazhong(
            "511902",
            "巴州区",
            "江北大道 巴州大道 回风大道 将军大道 新华街 人民路",
            "曾口镇 梁永镇 清江镇 化成镇 水宁寺镇 大和乡",
        ),
        8,
    ),
    (
        _bazhong(
            "511903", "恩阳区", "登科大道 恩阳大道 文治街", "柳林镇 下八庙镇 渔溪镇 花丛镇 三河场镇"
        ),
        3,
    ),
    (_bazhong("511921", "通江县", "诺江镇滨河路 诺江镇人民街", "民胜镇 铁佛镇 沙溪镇 至诚镇"), 3),
    (_bazhong("511923", "平昌县", "江口镇同州大道 江口镇佛楼路", "驷马镇 白衣镇 岳家镇 得胜镇"), 3),
)

DISTRICTS: tuple[District, ...] = tuple(d for d, _ in _WEIGHTED)
DISTRICT_WEIGHTS: tuple[int, ...] = tuple(w for _, w in _WEIGHTED)
YUYANG = DISTRICTS[0]

# Surnames by rough frequency; weights make 王/李/张 common and the tail rare.
SURNAMES = _words(
    "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 唐 许 韩 冯 邓 曹 "
    "彭 曾 肖 田 董 袁 潘 于 蒋 蔡 余 杜 叶 程 苏 魏 吕 丁 任 沈 姚 卢 姜 崔 钟 谭 陆 汪 范 金 "
    "石 廖 贾 夏 韦 付 方 白 邹 孟 熊 秦 邱 江 尹 薛 闫 段 雷 侯 龙 史 陶 黎 贺 顾 毛 郝 龚 邵 "
    "万 钱 严 武 戴 孔 常 乔 呼 拓 折 惠 艾"
)
SURNAME_WEIGHTS = tuple(max(1, 60 - i) for i in range(len(SURNAMES)))
MALE_GIVEN = _words(
    "伟 强 军 磊 勇 杰 涛 斌 超 明 刚 平 辉 鹏 华 飞 鑫 波 宁 龙 海 林 峰 建 国 东 文 亮 成 志 "
    "永 新 宏 俊 晨 浩 宇 博 瑞 凯 彬 卫 忠 民 兵 江 毅 锋 振 春 生 荣 福 德 庆 利 武 喜 旭"
)
FEMALE_GIVEN = _words(
    "芳 娜 敏 静 丽 艳 娟 霞 燕 玲 婷 雪 慧 琳 洁 萍 红 梅 莉 兰 凤 颖 倩 欣 悦 妍 佳 璐 晶 秀 "
    "英 华 玉 桂 荣 春 月 彩 瑶 琴 蓉 丹 岚 薇 楠"
)
FOREIGN_NAMES = (
    "DAVID JOHN MILLER",
    "MICHAEL ANDREW BROWN",
    "KIM MIN SU",
    "SATO KENICHI",
    "PETER HANS MUELLER",
    "IVANOV SERGEY",
)

# 字号 halves: any first + any second gives a plausible trade name such as 鑫源 or 恒达.
TRADE_FIRST = _words(
    "鑫 恒 宏 华 金 盛 永 万 兴 祥 天 中 泰 瑞 博 德 汇 嘉 锦 利 隆 明 润 顺 同 旺 亿 远 正 众 "
    "安 宝 昌 大 富 广 海 浩 红 惠 吉 佳 聚 凯 康 力 龙 美 民 鹏 启 乾 荣 尚 胜 世 腾 通 伟 文 "
    "新 信 旭 亚 耀 银 裕 源 长 振 志 卓 紫 创 诚 晨 丰 光 辉 景 骏 坤 蓝 朗 茂 诺 群 锐 森 拓 "
    "皓 轩 雅 益 盈 宇 悦 云 泽 智 秦 塞 驼 麟"
)
TRADE_SECOND = _words(
    "源 达 泰 信 诚 世 兴 通 隆 瑞 泽 恒 和 丰 远 盛 禾 程 民 昌 发 安 成 力 旺 航 宇 鼎 聚 凯 "
    "康 腾 佳 品 利 天 业 华 鑫 辉 阳 峰 海 川 林 德 宏 博 晟 祥 晖 坤 荣 润 锦 茂 升"
)

# Shop words of 个体工商户 names, e.g. 榆阳区鑫源便利店.
SHOPS = _words(
    "便利店 五金店 饭店 烧烤店 超市 理发店 建材经营部 农资经营部 汽车修理部 服装店 手机店 "
    "水果店 粮油店 面馆 火锅店 蔬菜店 家电维修部 装饰材料店 文具店 养殖场"
)
# Produce of 农民专业合作社 names, e.g. 清水县红堡镇瑞丰苹果种植农民专业合作社.
COOP_PRODUCE = _words(
    "苹果种植 马铃薯种植 小杂粮种植 中药材种植 蔬菜种植 花椒种植 核桃种植 肉牛养殖 生猪养殖 "
    "肉羊养殖 蛋鸡养殖 农机服务 食用菌种植 茶叶种植"
)
# Village names are a surname + 家 + one of these landforms, e.g. 刘家湾村.
LANDFORMS = _words("湾 沟 畔 峁 庄 河 岔 梁 坪 塬 坡 台")
BUILDINGS = _words("金沙小区 阳光花园 世纪广场 东方大厦 商贸城 开发区综合楼 银河家园 滨河花园")


@dataclass(frozen=True, slots=True)
class Industry:
    """The industry word of a company name with its business scope; water marks 水利 firms."""

    word: str
    scope: str
    water: bool
    weight: int


_LICENSED = "（依法须经批准的项目，经相关部门批准后方可开展经营活动，具体经营项目以审批结果为准）"
_GENERAL = "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）"


def _scope(licensed: str, general: str) -> str:
    parts = []
    if licensed:
        parts.append(f"许可项目：{licensed}。{_LICENSED}")
    if general:
        parts.append(f"一般项目：{general}。{_GENERAL}")
    return "".join(parts)


INDUSTRIES: tuple[Industry, ...] = (
    Industry(
        "建设工程",
        _scope("建设工程施工；水利工程建设监理", "园林绿化工程施工；土石方工程施工；建筑材料销售"),
        True,
        6,
    ),
    Industry(
        "水利水电工程",
        _scope("水利工程建设监理；建设工程施工；河道采砂", "水利相关咨询服务；防洪除涝设施管理"),
        True,
        4,
    ),
    Industry(
        "市政工程",
        _scope(
            "建设工程施工；城市生活垃圾经营性服务", "市政设施管理；土石方工程施工；园林绿化工程施工"
        ),
        True,
        3,
    ),
    Industry(
        "建筑工程",
        _scope("建设工程施工；建筑劳务分包", "建筑材料销售；机械设备租赁；工程管理服务"),
        True,
        2,
    ),
    Industry(
        "商贸", _scope("", "日用百货销售；五金产品零售；建筑材料销售；农副产品销售"), False, 12
    ),
    Industry(
        "煤业",
        _scope("煤炭开采；道路货物运输（不含危险货物）", "煤炭及制品销售；选矿；矿山机械销售"),
        False,
        5,
    ),
    Industry(
        "能源科技", _scope("", "新兴能源技术研发；太阳能发电技术服务；煤炭及制品销售"), False, 5
    ),
    Industry(
        "农业开发", _scope("", "农作物种植；谷物种植；牲畜销售；农产品的生产、销售、加工"), False, 6
    ),
    Industry("餐饮管理", _scope("餐饮服务；食品经营", "餐饮管理；外卖递送服务"), False, 5),
    Industry(
        "物流",
        _scope("道路货物运输（不含危险货物）", "普通货物仓储服务；装卸搬运；国内货物运输代理"),
        False,
        5,
    ),
    Industry(
        "建材", _scope("", "建筑材料销售；水泥制品制造；砼结构构件销售；轻质建筑材料销售"), False, 4
    ),
    Industry(
        "房地产开发", _scope("房地产开发经营", "物业管理；非居住房地产租赁；住房租赁"), False, 3
    ),
    Industry(
        "网络科技",
        _scope("第二类增值电信业务", "软件开发；信息技术咨询服务；网络技术服务"),
        False,
        5,
    ),
    Industry("环保科技", _scope("", "环保咨询服务；污水处理及其再生利用；固体废物治理"), False, 3),
    Industry(
        "机械设备", _scope("", "机械设备销售；机械设备租赁；通用设备修理；五金产品批发"), False, 4
    ),
    Industry(
        "劳务", _scope("建筑劳务分包", "劳务服务（不含劳务派遣）；家政服务；装卸搬运"), False, 4
    ),
    Industry(
        "医药",
        _scope("药品零售；第二类医疗器械经营", "第一类医疗器械销售；保健食品（预包装）销售"),
        False,
        3,
    ),
    Industry("食品", _scope("食品生产；食品销售", "食用农产品初加工；食用农产品批发"), False, 3),
    Industry(
        "酒店管理", _scope("住宿服务；餐饮服务", "酒店管理；会议及展览服务；停车场服务"), False, 3
    ),
    Industry(
        "汽车销售服务",
        _scope("机动车检验检测服务", "汽车新车销售；二手车经纪；汽车零配件零售"),
        False,
        3,
    ),
    Industry(
        "装饰工程", _scope("住宅室内装饰装修", "建筑装饰材料销售；家具安装和维修服务"), False, 3
    ),
    Industry(
        "石油化工",
        _scope(
            "危险化学品经营", "石油制品销售（不含危险化学品）；化工产品销售（不含许可类化工产品）"
        ),
        False,
        2,
    ),
    Industry("文化传媒", _scope("", "广告设计、代理；组织文化艺术交流活动；平面设计"), False, 2),
    Industry("物业管理", _scope("", "物业管理；家政服务；城市绿化管理"), False, 2),
)
INDUSTRY_WEIGHTS: tuple[int, ...] = tuple(i.weight for i in INDUSTRIES)
WATER_INDUSTRIES: tuple[Industry, ...] = tuple(i for i in INDUSTRIES if i.water)

SCOPE_INDIVIDUAL = _scope("食品销售", "日用百货销售；五金产品零售；家用电器销售")
SCOPE_COOP = _scope("", "组织收购、销售成员种植养殖的产品；农业技术推广服务；农业机械服务")
SCOPE_VILLAGE = "集体资产经营与管理、集体资源发包、农业生产发展和服务、财务管理和收益分配等"
SCOPE_UNION = "维护职工合法权益，开展职工教育和文化体育活动，参与企业民主管理"

# 企业类型 of 91 companies with weights; the last two need matching legal representatives.
ENT_TYPES = (
    "有限责任公司(自然人投资或控股)",
    "有限责任公司(自然人独资)",
    "有限责任公司(非自然人投资或控股的法人独资)",
    "其他有限责任公司",
    "有限责任公司(国有独资)",
    "股份有限公司(非上市、自然人投资或控股)",
    "股份有限公司(非上市)",
)
ENT_TYPE_WEIGHTS = (55, 20, 6, 5, 2, 5, 2)
ENT_TYPE_BRANCH = "有限责任公司分公司(自然人投资或控股)"
ENT_TYPE_PERMIT = "有限责任公司(台港澳自然人独资)"
ENT_TYPE_FOREIGN = "有限责任公司(外国自然人独资)"
ENT_TYPE_INDIVIDUAL = "个体工商户"
ENT_TYPE_COOP = "农民专业合作社"
ENT_TYPE_VILLAGE = "农村集体经济组织"
ENT_TYPE_UNION = "工会"

STATE_ACTIVE = "存续（在营、开业、在册）"
STATE_REVOKED = "吊销，未注销"
STATE_CANCELLED = "注销"
STATE_MOVED = "迁出"
REG_STATES = (STATE_ACTIVE, STATE_REVOKED, STATE_CANCELLED, STATE_MOVED)
REG_STATE_WEIGHTS = (88, 5, 5, 2)

# Registered capital in 万元, with the lucky amounts founders like (168, 518, 888, 1888).
CAPITALS = (10, 30, 50, 100, 168, 200, 300, 500, 518, 800, 888, 1000, 1888, 2000, 3000, 5000, 10000)
CAPITAL_WEIGHTS = (8, 6, 12, 16, 2, 12, 10, 12, 1, 4, 2, 9, 1, 4, 3, 3, 2)

# 经营异常名录 causes: the four of 《企业经营异常名录管理暂行办法》 第四条.
ABNORMAL_CAUSES = (
    "未依照《企业信息公示暂行条例》第八条规定的期限公示年度报告的",
    "未在工商行政管理部门依照《企业信息公示暂行条例》第十条规定责令的期限内公示有关企业信息的",
    "公示企业信息隐瞒真实情况、弄虚作假的",
    "通过登记的住所或者经营场所无法联系的",
)
ABNORMAL_CAUSE_WEIGHTS = (60, 8, 4, 28)
ABNORMAL_REMOVALS = (
    "补报未报年份的年度报告并公示，申请移出",
    "依法履行公示义务，申请移出",
    "更正其公示的企业信息，申请移出",
    "依法办理住所或者经营场所变更登记，申请移出",
)

ILLEGAL_CAUSE_ABNORMAL = "被列入经营异常名录届满3年仍未履行相关义务的"
ILLEGAL_CAUSES = (
    ILLEGAL_CAUSE_ABNORMAL,
    "提交虚假材料或者采取其他欺诈手段隐瞒重要事实，取得公司变更或者注销登记，被撤销登记的",
    "因不正当竞争行为两年内受到三次以上行政处罚的",
    "因提供的商品或者服务不符合保障人身、财产安全要求，造成人身伤害等严重后果，受到刑事处罚的",
    "因直销违法行为两年内受到三次以上行政处罚的",
)
ILLEGAL_CAUSE_WEIGHTS = (70, 12, 8, 5, 5)
ILLEGAL_REMOVAL = "已履行相关义务，依据《市场监督管理严重违法失信名单管理办法》第十七条申请提前移出"

# 行政处罚: (违法行为类型, 处罚内容 with {amount} in 元, minor); minor ones are published 3 months.
MARKET_PENALTIES = (
    ("未按规定公示年度报告", "警告", True),
    ("发布虚假广告", "责令停止发布广告，罚款{amount}元", False),
    ("销售不合格产品", "没收违法所得，罚款{amount}元", False),
    ("无照经营", "责令改正，罚款{amount}元", False),
    ("未按规定明码标价", "警告，罚款{amount}元", True),
    ("经营超过保质期的食品", "没收违法经营的食品，罚款{amount}元", False),
    ("计量器具未按规定检定", "责令改正，罚款{amount}元", True),
)

DISRUPT_TYPES = (
    "有履行能力而拒不履行生效法律文书确定义务",
    "违反财产报告制度",
    "违反限制消费令",
    "以伪造证据、暴力、威胁等方法妨碍、抗拒执行",
    "以虚假诉讼、虚假仲裁或者以隐匿、转移财产等方法规避执行",
    "无正当理由拒不履行执行和解协议",
)
DISRUPT_WEIGHTS = (60, 20, 10, 3, 4, 3)
DEBTS = ("货款", "工程款", "借款", "劳务费", "租金", "材料款", "运输费")

TAX_NATURES = ("偷税", "虚开增值税专用发票", "逃避追缴欠税", "虚开普通发票", "骗取出口退税")
TAX_NATURE_WEIGHTS = (45, 30, 12, 10, 3)

WATER_BLACKLIST_REASONS = (
    "在水利工程建设中出借资质、违法分包",
    "因工程质量问题造成重大质量事故",
    "在招标投标活动中串通投标、弄虚作假",
    "拖欠农民工工资被认定为重大劳动保障违法行为",
)
WATER_WATCH_REASONS = (
    "在水利建设市场主体信用信息中提供虚假材料",
    "工程建设中发生一般质量事故",
    "拒不执行水行政主管部门的整改要求",
    "在质量安全检查中发现严重问题",
)
WATER_PENALTIES = (
    ("未经批准擅自取水", "责令停止违法行为，限期采取补救措施，罚款{amount}元"),
    ("违反水土保持方案施工", "责令停止违法行为，限期改正，罚款{amount}元"),
    ("在河道管理范围内建设妨碍行洪的建筑物", "责令限期拆除，罚款{amount}元"),
    ("未按规定履行工程质量安全责任", "责令改正，罚款{amount}元"),
    ("非法采砂", "没收违法所得，罚款{amount}元"),
)
